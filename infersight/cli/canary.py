"""``infersight canary``: compare two revisions' traffic window by window; promote, hold or roll back."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from infersight.cli.storeargs import (
    Component,
    Namespace,
    Since,
    Store,
    Until,
    open_for_reading,
    parse_time,
    store_errors,
    store_url,
)

console = Console(soft_wrap=True, highlight=False)
COLOURS = {"promote": "green", "hold": "yellow", "roll back": "bold red"}


def canary(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="The InferenceService.")],
    namespace: Namespace = None,
    component: Component = None,
    baseline: Annotated[
        str | None, typer.Option(help="The revision rolled out now (default: the one seen first).")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option(help="The revision being rolled out (default: the one seen last).")
    ] = None,
    since: Since = None,
    until: Until = None,
    window_seconds: Annotated[float, typer.Option(min=1, help="Length of each window compared.")] = 300,
    p_val: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Level of each window's verdict.")] = 0.05,
    min_instances: Annotated[int, typer.Option(min=2, help="Fewest instances a side needs per window.")] = 30,
    confirm: Annotated[int, typer.Option(min=1, help="Windows in a row that decide the rollout.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="The verdict and every window as JSON.")] = False,
    store: Store = None,
) -> None:
    """Judge a canary: its inputs, predictions, outlier rate and accuracy against the baseline's."""
    from infersight.sinks.canary import CanaryRequest, judge_canary
    from infersight.sinks.store.filters import PayloadFilter

    engine = open_for_reading(store_url(ctx, store))
    where = PayloadFilter(
        namespace=namespace,
        inferenceservice=model,
        component=component,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    request = CanaryRequest(where, baseline, candidate, window_seconds, p_val, min_instances, confirm)
    with store_errors():
        verdict = judge_canary(engine, request)
    if as_json:
        print(verdict.model_dump_json())
        return
    console.print(f"[bold]{model}[/]: candidate {verdict.candidate} against baseline {verdict.baseline}")
    for window in verdict.windows:
        why = f"  {', '.join(window.reasons)}" if window.reasons else ""
        sizes = f"{window.baseline_instances:>6,} / {window.candidate_instances:<6,}"
        console.print(f"  {window.start:%Y-%m-%d %H:%M:%S}  {sizes} {window.call}{why}")
    console.print(f"[{COLOURS[verdict.verdict]}]{verdict.verdict}[/]: {verdict.reason}")
