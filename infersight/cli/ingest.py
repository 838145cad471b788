"""``infersight ingest``: serve the HTTP CloudEvents receiver."""

from __future__ import annotations

from typing import Annotated

import typer

from infersight.cli.context import settings_of


def ingest(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (ingest.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (ingest.port).")] = None,
) -> None:
    """Receive CloudEvents over HTTP and write them to Kafka."""
    import uvicorn

    from infersight.ingest.app import create_app

    settings = settings_of(ctx)
    config = settings.ingest
    uvicorn.run(
        create_app(settings),
        host=host or config.host,
        port=port if port is not None else config.port,
        log_level=config.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
