"""``infersight export``: a retraining set from the stored payloads, with a progress bar."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from infersight.cli.context import CliError
from infersight.cli.storeargs import (
    Component,
    DetectionId,
    Endpoint,
    InDrift,
    Labelled,
    Model,
    Namespace,
    Since,
    Store,
    Until,
    open_for_reading,
    parse_time,
    store_errors,
    store_url,
)

console = Console(stderr=True, soft_wrap=True)
ExcludeOutliers = Annotated[bool, typer.Option(help="Leave out inferences flagged as outliers.")]
ExcludeAdversarial = Annotated[bool, typer.Option(help="Leave out inferences flagged as adversarial.")]


class Format(enum.StrEnum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"


_SUFFIXES = {".parquet": Format.parquet, ".pq": Format.parquet, ".csv": Format.csv, ".jsonl": Format.jsonl,
             ".ndjson": Format.jsonl}  # fmt: skip


def export(
    ctx: typer.Context,
    output: Annotated[Path, typer.Argument(help="File to write.", dir_okay=False)],
    file_format: Annotated[
        Format | None, typer.Option("--format", "-f", help="File format (default: from the file's suffix).")
    ] = None,
    namespace: Namespace = None,
    model: Model = None,
    endpoint: Endpoint = None,
    component: Component = None,
    since: Since = None,
    until: Until = None,
    exclude_outliers: ExcludeOutliers = False,
    exclude_adversarial: ExcludeAdversarial = False,
    labelled: Labelled = None,
    in_drift: InDrift = None,
    detection: DetectionId = None,
    store: Store = None,
) -> None:
    """Write one row per instance of each stored inference: features, outputs, prediction, label, flags."""
    from infersight.sinks.export import export as run_export
    from infersight.sinks.store.filters import PayloadFilter
    from infersight.sinks.store.query import count_payloads

    chosen = file_format or _SUFFIXES.get(output.suffix.lower())
    if chosen is None:
        raise CliError(f"cannot tell the format from {output.name!r}: pass --format parquet, csv or jsonl")
    if output.parent and not output.parent.exists():
        raise CliError(f"folder {output.parent} does not exist")
    engine = open_for_reading(store_url(ctx, store))
    where = PayloadFilter(
        namespace=namespace,
        inferenceservice=model,
        endpoint=endpoint,
        component=component,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        outlier=False if exclude_outliers else None,
        adversarial=False if exclude_adversarial else None,
        labelled=labelled,
        in_drift=in_drift,
        detection=detection,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with store_errors():
        total = count_payloads(engine, where)
    if total == 0:
        raise CliError("no stored inferences match these filters: nothing written")
    with store_errors(), Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("exporting inferences", total=total)
        try:
            result = run_export(
                engine, where, output, chosen.value, progress=lambda n: progress.advance(task, n)
            )
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc
    console.print(
        f"wrote {result.rows:,} rows ({result.inferences:,} inferences, {len(result.columns)} columns) "
        f"to {output}",
        highlight=False,
    )
