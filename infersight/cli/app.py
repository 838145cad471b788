"""One entry point with a sub-command per job; errors are one clear line and a non-zero exit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infersight.cli import api, dashboards, db, demo, export, ingest, kafka, query, replay, up, worker
from infersight.cli.context import CliError, State

app = typer.Typer(
    name="infersight",
    help="Payload logging and model monitoring for model serving, built on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("up")(up.up)
app.add_typer(kafka.app, name="kafka")
app.command("ingest")(ingest.ingest)
app.command("worker")(worker.worker)
app.command("query")(query.query)
app.command("export")(export.export)
app.command("api")(api.api)
app.add_typer(db.app, name="db")
app.command("dashboards")(dashboards.dashboards)
app.command("demo")(demo.demo)
app.command("replay")(replay.replay)

errors = Console(stderr=True, soft_wrap=True)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="INFERSIGHT_CONFIG", help="YAML configuration file."),
    ] = None,
) -> None:
    ctx.obj = State(config_path=config)


def main() -> None:
    try:
        app()
    except CliError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
