"""``infersight up``: the whole local stack in one command; Ctrl-C stops all of it.

Quiet by default: a line per part as it answers, the table of addresses once all of them do, then
one line of counts every few seconds. The parts' own output goes to a log file (``--verbose``
streams it instead), and a part that fails is named with its last line.
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infersight.cli.context import CliError, State, settings_of

if TYPE_CHECKING:
    from infersight.config import Settings
    from infersight.localstack import Part, PartOutput, Running, Stack

console = Console(soft_wrap=True, highlight=False)
COLOURS = {
    "kafka": "magenta",
    "ingest": "cyan",
    "worker": "green",
    "api": "yellow",
    "prometheus": "red",
    "up": "bold",
}
#: How long the parts may take to answer (a worker loading TensorFlow detectors takes a while).
READY_TIMEOUT_SECONDS = 180.0
COUNTS_EVERY_SECONDS = 5.0


def _print_line(name: str, line: str) -> None:
    prefix = Text(f"{name:>10} │ ", style=COLOURS.get(name, "white"))
    console.print(prefix + Text(line))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def up(
    ctx: typer.Context,
    api: Annotated[bool, typer.Option(help="Also serve the query API and web UI (api.port).")] = True,
    kafka: Annotated[
        bool, typer.Option(help="Start the local Kafka when none answers at kafka.bootstrap_servers.")
    ] = True,
    ingest_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="The ingest's port (ingest.port).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="The worker's metrics port (worker.metrics_port).")
    ] = None,
    api_port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="The query API's port (api.port).")
    ] = None,
    prometheus: Annotated[
        bool,
        typer.Option(help="Also run Prometheus, scraping the ingest and the worker, when it is installed."),
    ] = True,
    prometheus_port: Annotated[int, typer.Option(min=1, max=65535, help="Prometheus's port.")] = 9090,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Stream every part's output.")] = False,
    log: Annotated[
        Path | None, typer.Option(help="Where the parts' output goes (default: up.log in the state folder).")
    ] = None,
) -> None:
    """Run a local Kafka (when none is running), the ingest, a worker, the SQLite store and the web UI."""
    from infersight.config import default_state_dir
    from infersight.localkafka import LocalKafkaError
    from infersight.localstack import PartOutput, Stack, parts, prometheus_part
    from infersight.sinks.store import StoreError, make_engine, upgrade

    settings = settings_of(ctx)
    overrides = {}
    if ingest_port is not None:
        settings.ingest.port = ingest_port
        overrides["INFERSIGHT_INGEST__PORT"] = str(ingest_port)
    if metrics_port is not None:
        settings.worker.metrics_port = metrics_port
        overrides["INFERSIGHT_WORKER__METRICS_PORT"] = str(metrics_port)
    if api_port is not None:
        settings.api.port = api_port
        overrides["INFERSIGHT_API__PORT"] = str(api_port)
    state = ctx.find_root().obj
    assert isinstance(state, State)
    output = PartOutput(log or default_state_dir() / "up.log", _print_line if verbose else None)
    # Explicit handlers: a shell starting us in the background may have set SIGINT to be ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        with Stack(settings, state.config_path, output, environment=overrides) as stack:
            try:
                broker = stack.kafka_needed()
                if broker is not None and not kafka:
                    raise CliError(f"no Kafka answers at {settings.kafka.bootstrap_servers} (and --no-kafka)")
                if broker is not None:
                    with console.status(f"starting Kafka on {broker.bootstrap_servers} ..."):
                        stack.start_kafka(broker)
                    _print_line("kafka", f"running on {broker.bootstrap_servers}; log in {broker.log_file}")
                else:
                    _print_line("kafka", f"using the broker at {settings.kafka.bootstrap_servers}")
                if settings.store.enabled:
                    upgrade(make_engine(settings.store.url))
                chosen = [part for part in parts(settings, "localhost") if api or part.name != "api"]
                binary = shutil.which("prometheus") if prometheus else None
                if binary is not None:
                    folder = default_state_dir() / "prometheus"
                    chosen.append(
                        prometheus_part(settings, "localhost", binary, folder, prometheus_port, api)
                    )
                elif prometheus:
                    _print_line("up", "no prometheus on PATH: running without it (apt install prometheus)")
                stack.start(chosen)
                if not verbose:
                    _print_line(
                        "up", f"starting {', '.join(p.name for p in chosen)}; their output in {output.log}"
                    )
                try:
                    failed = stack.wait_ready(
                        READY_TIMEOUT_SECONDS, lambda part: _print_line(part.name, "ready")
                    )
                except TimeoutError as exc:
                    raise CliError(f"{exc}; see {output.log}") from exc
                if failed is not None:
                    raise CliError(_exit_message(failed.part.name, failed.process.returncode, output))
                console.print(_table(settings, chosen))
                metrics = [f"http://localhost:{settings.ingest.port}/metrics"]
                metrics.append(f"http://localhost:{settings.worker.metrics_port}/metrics")
                finished = _watch(stack, metrics)
                raise CliError(_exit_message(finished.part.name, finished.process.returncode, output))
            except KeyboardInterrupt:
                _print_line("up", "stopping ...")
            except (LocalKafkaError, StoreError) as exc:
                raise CliError(str(exc)) from exc
    finally:
        output.close()
    _print_line("up", "stopped")


def _exit_message(name: str, status: int | None, output: PartOutput) -> str:
    return (
        f"{name} exited with status {status}: {output.last_line(name)} (its output: {output.log}); stopping"
    )


def _table(settings: Settings, chosen: list[Part]) -> Table:
    table = Table(title="infersight is up; Ctrl-C stops everything", title_justify="left")
    table.add_column("part")
    table.add_column("where", overflow="fold")
    table.add_row("kafka", settings.kafka.bootstrap_servers)
    for part in chosen:
        table.add_row(part.name, part.listens.replace("  ", "\n"))
    if settings.store.enabled:
        table.add_row("store", settings.store.url)
    return table


def _watch(stack: Stack, metrics: list[str]) -> Running:
    """Print the counts every few seconds, when they changed, until a part exits; that part."""
    from infersight.localstack import Counts, scrape_counts

    before = Counts()
    while True:
        deadline = time.monotonic() + COUNTS_EVERY_SECONDS
        while time.monotonic() < deadline:
            finished = stack.exited()
            if finished is not None:
                return finished
            time.sleep(0.25)
        counts = scrape_counts(metrics)
        if counts != before:
            _print_line("up", counts.line(before))
        before = counts
