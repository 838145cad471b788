"""``infersight query``: stored payloads, detections or models, as a table or as JSON lines."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

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

console = Console()
Outlier = Annotated[bool | None, typer.Option("--outlier/--no-outlier", help="Flagged outliers (or not).")]
Adversarial = Annotated[
    bool | None, typer.Option("--adversarial/--no-adversarial", help="Flagged adversarial (or not).")
]
Kind = Annotated[str | None, typer.Option(help="Detections of this kind: drift, outlier, adversarial.")]
Detector = Annotated[str | None, typer.Option(help="Detections by this detector.")]
Detected = Annotated[
    bool | None, typer.Option("--detected/--not-detected", help="Detections that found something (or not).")
]
Limit = Annotated[int, typer.Option(min=1, max=10_000, help="Rows per page.")]
Cursor = Annotated[str | None, typer.Option(help="Continue after a previous page (its next cursor).")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line, with tensors and scores.")]
notes = Console(stderr=True)


class What(enum.StrEnum):
    payloads = "payloads"
    detections = "detections"
    models = "models"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value is not None else ""


def _flag(flagged: bool | None, score: float | None) -> str:
    if flagged is None:
        return ""
    text = "[bold red]yes[/]" if flagged else "no"
    return f"{text} ({score:.3g})" if score is not None else text


def _short(value: Any, width: int = 24) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(*headers: str) -> Table:
    """Cells wrap rather than end in an ellipsis: request ids and labels must stay readable."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _payload_table(items: list[Any]) -> Table:
    table = _table("time (UTC)", "model", "component", "endpoint", "request id", "protocol", "n",
                   "prediction", "label", "outlier", "adversarial")  # fmt: skip
    for p in items:
        table.add_row(
            _when(p.time), f"{p.namespace}/{p.inferenceservice}", p.component, p.endpoint,
            _short(p.request_id), p.protocol or "", str(p.instances or ""), _short(p.prediction),
            _short(p.label), _flag(p.outlier, p.outlier_score), _flag(p.adversarial, p.adversarial_score),
        )  # fmt: skip
    return table


def _detection_table(items: list[Any]) -> Table:
    table = _table("time (UTC)", "model", "component", "endpoint", "detector", "kind", "detected",
                   "statistic", "p-value", "window", "n", "id")  # fmt: skip
    for d in items:
        table.add_row(
            _when(d.time), f"{d.namespace}/{d.inferenceservice}", d.component, d.endpoint, d.detector, d.kind,
            "[bold red]yes[/]" if d.detected else "no",
            "" if d.statistic is None else f"{d.statistic:.4g}",
            "" if d.p_value is None else f"{d.p_value:.3g}",
            f"{_when(d.window_start)} → {_when(d.window_end)[11:]}", str(d.instances), _short(d.id),
        )  # fmt: skip
    return table


def _model_table(items: list[Any]) -> Table:
    table = _table("model", "component", "endpoint", "inferences", "last seen (UTC)", "outliers",
                   "adversarial", "labelled", "accuracy", "detections", "drift")  # fmt: skip
    for m in items:
        table.add_row(
            f"{m.namespace}/{m.inferenceservice}", m.component, m.endpoint, f"{m.inferences:,}",
            _when(m.last_seen), f"{m.outliers:,}", f"{m.adversarial:,}", f"{m.labelled:,}",
            "" if m.accuracy is None else f"{m.accuracy:.1%}", f"{m.detections:,}", f"{m.drift_detected:,}",
        )  # fmt: skip
    return table


def query(
    ctx: typer.Context,
    what: Annotated[What, typer.Argument(help="What to list.")] = What.payloads,
    namespace: Namespace = None,
    model: Model = None,
    endpoint: Endpoint = None,
    component: Component = None,
    since: Since = None,
    until: Until = None,
    outlier: Outlier = None,
    adversarial: Adversarial = None,
    labelled: Labelled = None,
    in_drift: InDrift = None,
    detection: DetectionId = None,
    kind: Kind = None,
    detector: Detector = None,
    detected: Detected = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: AsJson = False,
    store: Store = None,
) -> None:
    """List stored payloads (inferences with their flags), detections or models, newest first."""
    from infersight.sinks.store.filters import DetectionFilter, PayloadFilter
    from infersight.sinks.store.query import list_detections, list_models, list_payloads

    engine = open_for_reading(store_url(ctx, store))
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with store_errors():
        if what is What.models:
            models = list_models(engine)
            items: list[Any] = models
            table, next_cursor = _model_table(models), None
        elif what is What.detections:
            where = DetectionFilter(
                namespace=namespace,
                inferenceservice=model,
                endpoint=endpoint,
                component=component,
                since=start,
                until=end,
                kind=kind,
                detector=detector,
                detected=detected,
            )
            page = list_detections(engine, where, limit=limit, cursor=cursor)
            items, table, next_cursor = page.items, _detection_table(page.items), page.next_cursor
        else:
            filters = PayloadFilter(
                namespace=namespace,
                inferenceservice=model,
                endpoint=endpoint,
                component=component,
                since=start,
                until=end,
                outlier=outlier,
                adversarial=adversarial,
                labelled=labelled,
                in_drift=in_drift,
                detection=detection,
            )
            payloads = list_payloads(engine, filters, limit=limit, cursor=cursor, detail=as_json)
            items, table, next_cursor = payloads.items, _payload_table(payloads.items), payloads.next_cursor
    if as_json:
        for item in items:
            print(item.model_dump_json(exclude_none=True))
    else:
        console.print(table)
    if next_cursor:
        notes.print(f"more: --cursor {next_cursor}", highlight=False)
