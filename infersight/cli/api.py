"""``infersight api``: serve the query API on its own."""

from __future__ import annotations

from typing import Annotated

import typer

from infersight.cli.context import settings_of, tls_files
from infersight.cli.storeargs import Store, store_errors


def api(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (api.port).")] = None,
    store: Store = None,
) -> None:
    """Serve GET /v1/models, /v1/payloads and /v1/detections over the store (OpenAPI at /docs)."""
    import uvicorn

    from infersight import logs
    from infersight.sinks.api import create_query_app, open_store

    settings = settings_of(ctx)
    config = settings.api
    logs.configure(config.log_level)
    with store_errors():
        engine = open_store(store or settings.store.url, settings.store.migrate_on_start)
    certfile, keyfile = tls_files(config.tls)
    uvicorn.run(
        create_query_app(engine, config),
        host=host or config.host,
        port=port if port is not None else config.port,
        log_level=config.log_level,
        access_log=False,
        server_header=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
