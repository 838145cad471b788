"""``infersight canary``: compare two revisions' traffic window by window; promote, hold or roll back."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from infersight.cli.context import CliError
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
notes = Console(stderr=True, soft_wrap=True, highlight=False)
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
    min_instances: Annotated[
        int, typer.Option(min=2, help="Fewest instances a side needs in a window.")
    ] = 30,
    confirm: Annotated[int, typer.Option(min=1, help="Windows in a row that decide the rollout.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="The verdict and every window as JSON.")] = False,
    store: Store = None,
) -> None:
    """Judge a canary: its inputs, predictions, outlier rate and accuracy against the baseline's."""
    from infersight.detectors.canary import judge_rollout, judge_window
    from infersight.sinks.store.filters import PayloadFilter
    from infersight.sinks.store.query import list_revisions
    from infersight.sinks.store.revisions import shared_windows

    engine = open_for_reading(store_url(ctx, store))
    where = PayloadFilter(
        namespace=namespace,
        inferenceservice=model,
        component=component,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    with store_errors():
        named = [r for r in list_revisions(engine, where) if r.revision]
        if len({(r.namespace, r.component) for r in named}) > 1:
            raise CliError(
                "several namespaces or components serve this model: choose with --namespace, --component"
            )
        known = [r.revision for r in named]
        if baseline is None or candidate is None:
            if len(known) < 2:
                raise CliError(
                    f"{model} has {len(known)} revision(s) in the store ({', '.join(known) or 'none'})"
                )
            baseline = baseline or known[0]
            candidate = candidate or next(name for name in reversed(known) if name != baseline)
        for name in (baseline, candidate):
            if name not in known:
                raise CliError(f"no inferences of revision {name!r} (stored: {', '.join(known) or 'none'})")
        windows = shared_windows(engine, where, baseline, candidate, timedelta(seconds=window_seconds))
    if not windows:
        raise CliError(f"{baseline} and {candidate} never served in the same span")
    verdicts = [judge_window(w.baseline, w.candidate, p_val, min_instances) for w in windows]
    rollout = judge_rollout(verdicts, confirm)
    if as_json:
        body: dict[str, Any] = {
            "baseline": baseline,
            "candidate": candidate,
            "verdict": rollout.verdict,
            "reason": rollout.reason,
            "windows": [
                {"start": w.start.isoformat(), "end": w.end.isoformat(), **dataclasses.asdict(v)}
                for w, v in zip(windows, verdicts, strict=True)
            ],
        }
        print(orjson.dumps(body).decode())
        return
    console.print(f"[bold]{model}[/]: candidate {candidate} against baseline {baseline}")
    for shared, verdict in zip(windows, verdicts, strict=True):
        why = f"  {', '.join(verdict.reasons)}" if verdict.reasons else ""
        sizes = f"{verdict.baseline_instances:>6,} / {verdict.candidate_instances:<6,}"
        console.print(f"  {shared.start:%Y-%m-%d %H:%M:%S}  {sizes} {verdict.call}{why}")
    colour = COLOURS[rollout.verdict]
    console.print(f"[{colour}]{rollout.verdict}[/]: {rollout.reason}")
