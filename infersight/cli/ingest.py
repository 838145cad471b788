"""``infersight ingest``: serve the HTTP CloudEvents receiver."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from infersight.cli.context import CliError, kafka_error, settings_of, tls_files
from infersight.kafkaclient import (
    KafkaAuthenticationFailed,
    KafkaUnreachable,
    ensure_topics,
    infersight_topics,
)

console = Console(stderr=True)
#: With a spool the ingest need not wait for Kafka to start: it tries this long, then serves.
SPOOLING_START_SECONDS = 3.0


def ingest(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (ingest.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (ingest.port).")] = None,
) -> None:
    """Receive CloudEvents over HTTP and write them to Kafka."""
    import uvicorn

    from infersight import logs
    from infersight.ingest.app import create_api
    from infersight.ingest.serving import DrainingServer, listening_socket

    settings = settings_of(ctx)
    config = settings.ingest
    logs.configure(config.log_level)
    if settings.kafka.create_topics:
        kafka = settings.kafka
        if config.spool.enabled:  # a restart during an outage must take events at once
            kafka = kafka.model_copy(update={"startup_timeout_seconds": SPOOLING_START_SECONDS})
        try:
            with console.status(f"waiting for Kafka at {kafka.bootstrap_servers} ..."):
                created = ensure_topics(kafka, infersight_topics(kafka))
        except KafkaAuthenticationFailed as exc:
            raise kafka_error(exc) from exc
        except KafkaUnreachable as exc:
            if not config.spool.enabled:
                raise kafka_error(exc) from exc
            console.print(
                f"Kafka at {kafka.bootstrap_servers} does not answer: events are spooled in "
                f"{config.spool.path} until it does",
                highlight=False,
            )
        else:
            if created:
                console.print(f"created Kafka topics: {', '.join(created)}", highlight=False)
    certfile, keyfile = tls_files(config.tls)
    api, receiver = create_api(settings)
    address = host or config.host, port if port is not None else config.port
    try:
        sock = listening_socket(*address)
    except OSError as exc:
        raise CliError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}") from exc
    server = DrainingServer(
        uvicorn.Config(
            receiver.front(api),
            log_level=config.log_level,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            timeout_graceful_shutdown=int(config.kafka_timeout_seconds) + 5,
        ),
        sock,
        config.drain_seconds,
        receiver.start_draining,
    )
    server.run(sockets=[sock])
