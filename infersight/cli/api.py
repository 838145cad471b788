"""``infersight api``: serve the query API on its own."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from infersight.cli.context import CliError, settings_of, tls_files
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
    address = (host or config.host, port if port is not None else config.port)
    # Tried here, so that a busy port is one line (uvicorn would log it among its own lines).
    probe = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(address)
    except OSError as exc:
        raise CliError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror}") from exc
    finally:
        probe.close()
    uvicorn.run(
        create_query_app(engine, config),
        host=address[0],
        port=address[1],
        log_level=config.log_level,
        access_log=False,
        server_header=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
