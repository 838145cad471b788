"""``infersight kafka start|stop|status``: the local single-node Apache Kafka."""

from __future__ import annotations

import typer
from rich.console import Console

from infersight.cli.context import CliError, settings_of
from infersight.localkafka import KafkaStatus, LocalKafka, LocalKafkaError

app = typer.Typer(
    help="Run a local single-node Apache Kafka (KRaft) from the Maven Central jars.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console()


def _local(ctx: typer.Context) -> LocalKafka:
    return LocalKafka(settings_of(ctx).local_kafka)


def _describe(status: KafkaStatus) -> str:
    state = "[green]running[/]" if status.running else "[red]stopped[/]"
    where = f" on [bold]{status.bootstrap_servers}[/] (pid {status.pid})" if status.running else ""
    return f"Kafka {status.version} {state}{where}; state in {status.state_dir}"


@app.command()
def start(ctx: typer.Context) -> None:
    """Start the broker (fetching its jars on first use) and wait until it answers."""
    kafka = _local(ctx)
    try:
        with console.status(f"starting Kafka on {kafka.bootstrap_servers} ..."):
            status = kafka.start()
    except LocalKafkaError as exc:
        raise CliError(str(exc)) from exc
    console.print(_describe(status), highlight=False)


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the broker cleanly."""
    kafka = _local(ctx)
    with console.status("stopping Kafka ..."):
        stopped = kafka.stop()
    console.print("Kafka stopped" if stopped else "Kafka was not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Say whether the broker runs and where it listens (exit 3 when it does not)."""
    current = _local(ctx).status()
    console.print(_describe(current), highlight=False)
    if not current.running:
        raise typer.Exit(3)
