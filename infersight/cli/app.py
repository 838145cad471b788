"""One entry point with a sub-command per job; errors are one clear line and a non-zero exit."""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infersight.cli import (
    api,
    canary,
    dashboards,
    db,
    demo,
    export,
    ingest,
    kafka,
    query,
    reference,
    replay,
    report,
    tail,
    up,
    worker,
)
from infersight.cli.context import CliError, State

app = typer.Typer(
    name="infersight",
    help="Payload logging and model monitoring for model serving, built on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's plain help: it wraps at any width and never cuts an option's name (rich's panels did).
    rich_markup_mode=None,
)
app.command("up", short_help="The whole local stack; Ctrl-C stops it.")(up.up)
app.add_typer(kafka.app, name="kafka", short_help="The local single-node Apache Kafka.")
app.command("ingest", short_help="The HTTP CloudEvents receiver.")(ingest.ingest)
app.command("worker", short_help="A stream worker: pair, detect, store.")(worker.worker)
app.command("query", short_help="Stored payloads, detections or models.")(query.query)
app.command("export", short_help="A retraining set from the store.")(export.export)
app.command("api", short_help="The query API and the web UI.")(api.api)
app.command("report", short_help="One model's HTML report.")(report.report)
app.command("tail", short_help="Events and detections as they arrive.")(tail.tail)
app.command("canary", short_help="Promote, hold or roll back a revision.")(canary.canary)
app.command("reference", short_help="Refit a detector on stored traffic.")(reference.reference)
app.add_typer(db.app, name="db")
app.command("dashboards", short_help="Grafana dashboards and alert rules.")(dashboards.dashboards)
app.command("demo", short_help="Every detector at work on demo traffic.")(demo.demo)
app.command("replay", short_help="Send recorded or generated events.")(replay.replay)

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


def config_first(argv: list[str]) -> list[str]:
    """``argv`` with ``--config`` (or ``-c``) moved before the command, wherever it was given.

    The configuration belongs to the root command, which Click parses before the sub-command's
    options: moving it lets ``infersight up --config x.yaml`` mean ``infersight --config x.yaml up``,
    as the documentation promises. Nothing after ``--`` is touched.
    """
    moved: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.extend([arg, *args])
        elif arg in ("--config", "-c"):
            value = next(args, None)
            moved.extend([arg] if value is None else [arg, value])
        elif arg.startswith("--config="):
            moved.append(arg)
        else:
            rest.append(arg)
    return [*moved, *rest]


def _quiet_third_party_warnings() -> None:
    """Leave out a warning no user can act on, printed at every worker start otherwise.

    quixstreams imports confluent-kafka's schema registry client, which imports authlib's httpx
    client, which warns that httpx is deprecated; authlib's own filter shows its warnings always,
    so ours goes in after it.
    """
    with contextlib.suppress(ImportError):
        import authlib.deprecate  # noqa: F401  (installs authlib's filter first)
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")


def main() -> None:
    _quiet_third_party_warnings()
    try:
        app(args=config_first(sys.argv[1:]))
    except CliError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
