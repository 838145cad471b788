"""``infersight query``: stored payloads, detections or models, as a table or as JSON lines."""

from __future__ import annotations

import dataclasses
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
Revision = Annotated[str | None, typer.Option(help="Only inferences this revision served.")]
Cursor = Annotated[str | None, typer.Option(help="Continue after a previous page (its next cursor).")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line, with tensors and scores.")]
notes = Console(stderr=True, soft_wrap=True)


class What(enum.StrEnum):
    payloads = "payloads"
    detections = "detections"
    models = "models"
    revisions = "revisions"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value is not None else ""


def _flag(flagged: bool | None, score: float | None) -> str:
    if flagged is None:
        return ""
    text = "[bold red]yes[/]" if flagged else "no"
    return f"{text} ({score:.3g})" if score is not None else text


#: Below this width each item is a short block of lines rather than a row of a wide table.
TABLE_WIDTH = 150


def _short(value: Any, width: int = 24) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(*headers: str, whole: tuple[str, ...] = ()) -> Table:
    """Cells wrap rather than end in an ellipsis; ids (``whole``) are never wrapped, so they copy."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=header in whole)
    return table


def _where(item: Any) -> str:
    """The endpoint and component, as one field."""
    return "/".join(part for part in (item.endpoint, item.component) if part) or "-"


def _payload_table(items: list[Any]) -> Table:
    table = _table("time (UTC)", "model", "endpoint", "prediction", "label", "outlier", "adversarial",
                   "request id", whole=("request id",))  # fmt: skip
    for p in items:
        table.add_row(
            _when(p.time), f"{p.namespace}/{p.inferenceservice}", _where(p), _short(p.prediction),
            _short(p.label), _flag(p.outlier, p.outlier_score), _flag(p.adversarial, p.adversarial_score),
            p.request_id,
        )  # fmt: skip
    return table


def _payload_block(p: Any) -> list[str]:
    return [
        f"[bold]{_when(p.time)}[/]  {p.namespace}/{p.inferenceservice}  {_where(p)}  {p.protocol or ''}",
        f"  prediction {_short(p.prediction, 40)}  label {_short(p.label, 40) or '-'}"
        f"  outlier {_flag(p.outlier, p.outlier_score) or '-'}"
        f"  adversarial {_flag(p.adversarial, p.adversarial_score) or '-'}",
        f"  request id {p.request_id}",
    ]


def _figure(d: Any) -> str:
    statistic = "" if d.statistic is None else f"statistic {d.statistic:.4g}"
    p_value = "" if d.p_value is None else f"p {d.p_value:.3g}"
    threshold = "" if d.threshold is None else f"threshold {d.threshold:.3g}"
    return "  ".join(part for part in (p_value, statistic, threshold) if part)


def _detection_table(items: list[Any]) -> Table:
    table = _table("window end (UTC)", "model", "endpoint", "detector", "detected", "value", "n", "id",
                   whole=("id",))  # fmt: skip
    for d in items:
        table.add_row(
            _when(d.window_end), f"{d.namespace}/{d.inferenceservice}", _where(d), f"{d.detector} ({d.kind})",
            "[bold red]yes[/]" if d.detected else "no", _figure(d), str(d.instances), d.id,
        )  # fmt: skip
    return table


def _detection_block(d: Any) -> list[str]:
    verdict = "[bold red]detected[/]" if d.detected else "not detected"
    return [
        f"[bold]{_when(d.window_start)} → {_when(d.window_end)[11:]}[/]  {d.namespace}/{d.inferenceservice}"
        f"  {_where(d)}",
        f"  {d.detector} ({d.kind}, {d.algorithm or '?'})  {verdict}  {_figure(d)}  over {d.instances}",
        f"  id {d.id}",
    ]


def _model_table(items: list[Any]) -> Table:
    table = _table("model", "endpoint", "inferences", "last seen (UTC)", "outliers", "adversarial",
                   "labelled", "accuracy", "detections", "drift")  # fmt: skip
    for m in items:
        table.add_row(
            f"{m.namespace}/{m.inferenceservice}", _where(m), f"{m.inferences:,}", _when(m.last_seen),
            f"{m.outliers:,}", f"{m.adversarial:,}", f"{m.labelled:,}",
            "" if m.accuracy is None else f"{m.accuracy:.1%}", f"{m.detections:,}", f"{m.drift_detected:,}",
        )  # fmt: skip
    return table


def _model_block(m: Any) -> list[str]:
    accuracy = "-" if m.accuracy is None else f"{m.accuracy:.1%} of {m.labelled:,}"
    return [
        f"[bold]{m.namespace}/{m.inferenceservice}[/]  {_where(m)}  last seen {_when(m.last_seen)}",
        f"  inferences {m.inferences:,}  outliers {m.outliers:,}  adversarial {m.adversarial:,}"
        f"  accuracy {accuracy}  detections {m.detections:,}  drift {m.drift_detected:,}",
    ]


def _revision_table(items: list[Any]) -> Table:
    table = _table("model", "revision", "inferences", "first seen (UTC)", "last seen (UTC)", "outliers",
                   "adversarial", "accuracy", whole=("revision",))  # fmt: skip
    for r in items:
        accuracy = f"{r.correct / r.labelled:.1%} of {r.labelled:,}" if r.labelled else ""
        table.add_row(
            f"{r.namespace}/{r.inferenceservice}", r.revision or "-", f"{r.inferences:,}",
            _when(r.first_seen), _when(r.last_seen), f"{r.outliers:,}", f"{r.adversarial:,}", accuracy,
        )  # fmt: skip
    return table


def _revision_block(r: Any) -> list[str]:
    accuracy = f"{r.correct / r.labelled:.1%} of {r.labelled:,}" if r.labelled else "-"
    return [
        f"[bold]{r.namespace}/{r.inferenceservice}[/]  revision {r.revision or '-'}",
        f"  {_when(r.first_seen)} → {_when(r.last_seen)}  inferences {r.inferences:,}"
        f"  outliers {r.outliers:,}  adversarial {r.adversarial:,}  accuracy {accuracy}",
    ]


_LAYOUTS = {
    "payloads": (_payload_table, _payload_block),
    "detections": (_detection_table, _detection_block),
    "models": (_model_table, _model_block),
    "revisions": (_revision_table, _revision_block),
}


def show(what: str, items: list[Any]) -> None:
    """A wide table on a wide terminal, else a block of lines per item; ids always whole."""
    table, block = _LAYOUTS[what]
    if console.width >= TABLE_WIDTH:
        console.print(table(items))
        return
    for item in items:
        for text in block(item):
            console.print(text)


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
    revision: Revision = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    as_json: AsJson = False,
    store: Store = None,
) -> None:
    """List stored payloads (inferences with their flags), detections, models or revisions."""
    from infersight.sinks.store.filters import DetectionFilter, PayloadFilter
    from infersight.sinks.store.query import list_detections, list_models, list_payloads, list_revisions

    engine = open_for_reading(store_url(ctx, store))
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with store_errors():
        if what is What.models:
            items: list[Any] = list_models(engine)
            next_cursor = None
        elif what is What.revisions:
            model_filter = PayloadFilter(namespace=namespace, inferenceservice=model, component=component)
            items = list_revisions(engine, dataclasses.replace(model_filter, since=start, until=end))
            next_cursor = None
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
            items, next_cursor = page.items, page.next_cursor
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
                revision=revision,
            )
            payloads = list_payloads(engine, filters, limit=limit, cursor=cursor, detail=as_json)
            items, next_cursor = payloads.items, payloads.next_cursor
    if not items:
        notes.print(f"no {what.value} match these filters" if cursor is None else "no more", highlight=False)
        return
    if as_json:
        for item in items:
            print(item.model_dump_json())
    else:
        show(what.value, items)
    if next_cursor:
        notes.print(f"more: --cursor {next_cursor}", highlight=False)
