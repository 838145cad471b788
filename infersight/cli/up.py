"""``infersight up``: the whole local stack in one command; Ctrl-C stops all of it."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infersight.cli.context import CliError, State, settings_of

console = Console(soft_wrap=True, highlight=False)
COLOURS = {"kafka": "magenta", "ingest": "cyan", "worker": "green", "api": "yellow", "up": "bold"}


def _print_line(name: str, line: str) -> None:
    prefix = Text(f"{name:>6} │ ", style=COLOURS.get(name, "white"))
    console.print(prefix + Text(line))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(
    ctx: typer.Context,
    api: Annotated[bool, typer.Option(help="Also serve the query API (api.port).")] = True,
    kafka: Annotated[
        bool, typer.Option(help="Start the local Kafka when none answers at kafka.bootstrap_servers.")
    ] = True,
) -> None:
    """Run a local Kafka (when none is running), the ingest, a worker, the SQLite store and the query API."""
    from infersight.localkafka import LocalKafkaError
    from infersight.localstack import Stack, parts
    from infersight.sinks.store import StoreError, make_engine, upgrade

    settings = settings_of(ctx)
    state = ctx.find_root().obj
    assert isinstance(state, State)
    # Explicit handlers: a shell starting us in the background may have set SIGINT to be ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    with Stack(settings, state.config_path, _print_line) as stack:
        try:
            broker = stack.kafka_needed()
            if broker is not None and not kafka:
                raise CliError(f"no Kafka answers at {settings.kafka.bootstrap_servers} (and --no-kafka)")
            if broker is not None:
                with console.status(f"starting Kafka on {broker.bootstrap_servers} ..."):
                    stack.start_kafka(broker)
                _print_line("kafka", f"started on {broker.bootstrap_servers}; log in {broker.log_file}")
            else:
                _print_line("kafka", f"using the broker at {settings.kafka.bootstrap_servers}")
            if settings.store.enabled:
                upgrade(make_engine(settings.store.url))
            chosen = [part for part in parts(settings, "localhost") if api or part.name != "api"]
            stack.start(chosen)
            table = Table(title="infersight is up; Ctrl-C stops everything", title_justify="left")
            table.add_column("part")
            table.add_column("where")
            table.add_row("kafka", settings.kafka.bootstrap_servers)
            for part in chosen:
                table.add_row(part.name, part.listens)
            if settings.store.enabled:
                table.add_row("store", settings.store.url)
            console.print(table)
            finished = stack.wait()
            raise CliError(f"{finished.part.name} exited with status {finished.process.returncode}; stopping")
        except KeyboardInterrupt:
            _print_line("up", "stopping ...")
        except (LocalKafkaError, StoreError) as exc:
            raise CliError(str(exc)) from exc
    _print_line("up", "stopped")
