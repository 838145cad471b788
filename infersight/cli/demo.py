"""``infersight demo``: train small models, fit detectors, send phased KServe traffic, show what was found."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infersight.cli.context import CliError, State
from infersight.logs import KAFKA_LOGGER

console = Console(soft_wrap=True, highlight=False)


def demo(
    ctx: typer.Context,
    workdir: Annotated[
        Path,
        typer.Option(help="Folder for models, detectors, config, store, report and export.", file_okay=False),
    ] = Path("infersight-demo"),
    ingest_url: Annotated[
        str | None,
        typer.Option(
            help="Send to this running ingest (its worker must run the demo's config) instead of "
            "starting a stack."
        ),
    ] = None,
    window: Annotated[int, typer.Option(min=10, help="Drift window, in wine instances.")] = 100,
    digits: Annotated[int, typer.Option(min=10, help="Digits requests per phase.")] = 100,
    epochs: Annotated[int, typer.Option(min=1, help="AdversarialAE training epochs.")] = 50,
    concurrency: Annotated[int, typer.Option(min=1, help="Events in flight at once.")] = 16,
) -> None:
    """Train on wine and digits, fit five detectors, send normal, drifted, outlier and adversarial traffic."""
    from infersight.config import ConfigError
    from infersight.demo.phases import Sizes
    from infersight.demo.run import Options, run
    from infersight.demo.send import SendError
    from infersight.demo.stack import StackError

    # librdkafka, where given this logger, logs every refused connection while a broker starts;
    # the demo says what matters.
    logging.getLogger(KAFKA_LOGGER).setLevel(logging.CRITICAL)
    state = ctx.find_root().obj
    assert isinstance(state, State)
    options = Options(
        workdir=workdir,
        sizes=Sizes(window=window, digits=digits),
        adversarial_epochs=epochs,
        ingest_url=ingest_url,
        config=state.config_path,
        concurrency=concurrency,
    )
    try:
        outcome = run(options, console)
    except (StackError, SendError, ConfigError) as exc:
        raise CliError(str(exc)) from exc
    table = Table(title="What was injected, and what the pipeline detected", title_justify="left")
    for column in outcome.header:
        table.add_column(column, justify="left" if column == "phase" else "right")
    for row in outcome.rows:
        table.add_row(*row)
    console.print(table)
    for result in outcome.results:
        console.print(f"  {result.phase.name:<12} {result.phase.description}")
    console.print(
        "  windows: drift windows detected/tested; caught: flagged/injected; "
        "false: flagged/inferences with nothing injected"
    )
    for name, url in outcome.urls:
        console.print(f"  {name:<22} {url}")
    if outcome.missing_metrics:
        console.print(f"[yellow]metrics not seen:[/] {', '.join(outcome.missing_metrics)}")
    for report in outcome.reports:
        console.print(f"report: {report}")
    for path, rows in outcome.exports:
        console.print(f"retraining set: {path} ({rows:,} rows)")
    console.print(f"finished in {outcome.seconds:.0f} s")
