"""``infersight report``: a self-contained HTML report for one model and a time range, from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infersight.cli.context import CliError
from infersight.cli.storeargs import (
    Endpoint,
    Namespace,
    Since,
    Store,
    Until,
    open_for_reading,
    parse_time,
    store_errors,
    store_url,
)

console = Console(stderr=True, highlight=False)


def report(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The InferenceService; may be left out when the store holds one."),
    ] = None,
    namespace: Namespace = None,
    endpoint: Endpoint = None,
    since: Since = None,
    until: Until = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The HTML file (default: report-<model>.html).")
    ] = None,
    store: Store = None,
) -> None:
    """Write one model's traffic, accuracy, drift per feature and flagged payloads as one HTML file."""
    from infersight.sinks.report import ReportRequest, write_report
    from infersight.sinks.store.query import list_models

    engine = open_for_reading(store_url(ctx, store))
    with store_errors():
        models = sorted(
            {
                (m.namespace, m.inferenceservice)
                for m in list_models(engine)
                if (namespace is None or m.namespace == namespace)
                and (model is None or m.inferenceservice == model)
            }
        )
        if len(models) != 1:
            known = ", ".join(
                f"{ns}/{name}"
                for ns, name in sorted({(m.namespace, m.inferenceservice) for m in list_models(engine)})
            )
            what = "no model matches" if not models else "several models match"
            raise CliError(f"{what}: choose one with --model and --namespace (stored: {known or 'none'})")
        chosen_namespace, chosen_model = models[0]
        request = ReportRequest(
            namespace=chosen_namespace,
            inferenceservice=chosen_model,
            endpoint=endpoint,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
        )
        path = write_report(engine, request, output or Path(f"report-{chosen_model}.html"), datetime.now(UTC))
    console.print(f"report: {path}")
