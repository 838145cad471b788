"""``infersight report``: one model's page of the web UI as a single HTML file, its data inside.

The file holds the UI's script and style inline and the data as JSON, so it opens anywhere, offline,
and shows what the UI shows for the span: traffic and accuracy per endpoint, every drift window
per detector with its threshold, the features of the windows that found drift beside their
reference, and the stored payloads of the latest flagged inferences.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Engine

from infersight.records import DRIFT
from infersight.sinks.canary import CanaryRequest, judge_canary
from infersight.sinks.store.filters import DetectionFilter, PayloadFilter, QueryError
from infersight.sinks.store.query import list_detections, list_models, list_payloads, list_revisions
from infersight.sinks.store.series import distributions, timeline
from infersight.sinks.store.views import Detection, RevisionSummary
from infersight.sinks.web import STATIC
from infersight.times import format_time

#: Drift windows whose features the report draws, newest first; payloads of flagged inferences.
WINDOWS_DRAWN = 60
PAYLOADS_KEPT = 30


@dataclass(frozen=True)
class ReportTable:
    """An extra table above the charts (the demo's phases)."""

    title: str
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class ReportSpan:
    """A labelled stretch of time shaded on every time chart (the demo's phases)."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ReportRequest:
    namespace: str
    inferenceservice: str
    endpoint: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tables: list[ReportTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spans: list[ReportSpan] = field(default_factory=list)


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    return value


def _every_detection(engine: Engine, where: DetectionFilter, most: int) -> list[Detection]:
    found: list[Detection] = []
    cursor = None
    while len(found) < most:
        page = list_detections(engine, where, limit=min(1000, most - len(found)), cursor=cursor)
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


def report_data(engine: Engine, request: ReportRequest) -> dict[str, Any]:
    """The object the UI's model page draws, as ``ui/src/model.js`` reads it from the API."""
    endpoints = [
        m
        for m in list_models(engine)
        if m.namespace == request.namespace
        and m.inferenceservice == request.inferenceservice
        and (request.endpoint is None or m.endpoint == request.endpoint)
    ]
    if not endpoints:
        raise QueryError(f"nothing stored for {request.namespace}/{request.inferenceservice}")
    since = request.since or min(m.first_seen for m in endpoints)
    until = request.until or max(m.last_seen for m in endpoints) + timedelta(seconds=1)
    namespace, inferenceservice = request.namespace, request.inferenceservice
    model = {"namespace": namespace, "inferenceservice": inferenceservice}
    timelines = []
    for m in endpoints:
        where = PayloadFilter(namespace, inferenceservice, m.endpoint, m.component, since=since, until=until)
        timelines.append({"endpoint": m.endpoint, "component": m.component, **_json(timeline(engine, where))})
    spans = DetectionFilter(namespace, inferenceservice, request.endpoint, since=since, until=until)
    drift = _every_detection(engine, dataclasses.replace(spans, kind=DRIFT), 20_000)
    flagged = [
        d
        for kind in ("outlier", "adversarial")
        for d in _every_detection(engine, dataclasses.replace(spans, kind=kind, detected=True), 500)
    ]
    flagged.sort(key=lambda d: d.time, reverse=True)
    drawn = [d for d in drift if d.detected and d.features][:WINDOWS_DRAWN]
    if not drawn:
        drawn = [d for d in drift if d.features][:1]
    payloads = {
        d.id: _json(list_payloads(engine, PayloadFilter(detection=d.id), limit=5).items)
        for d in flagged[:PAYLOADS_KEPT]
    }
    span = PayloadFilter(namespace, inferenceservice, since=since, until=until)
    revisions = list_revisions(engine, span)
    return {
        **model,
        "since": format_time(since),
        "until": format_time(until),
        "range": None,
        "endpoints": _json(endpoints),
        "timelines": timelines,
        "drift": _json(drift),
        "flagged": _json(flagged),
        "distributions": {d.id: _json(distributions(engine, d.id)) for d in drawn},
        "payloads": payloads,
        "revisions": _json(revisions),
        "canary": _canary(engine, span, revisions, until - since),
        "spans": [
            {"label": span.label, "start": format_time(span.start), "end": format_time(span.end)}
            for span in request.spans
        ],
    }


def _canary(
    engine: Engine, span: PayloadFilter, revisions: list[RevisionSummary], length: timedelta
) -> dict[str, Any] | None:
    """The first and last seen revisions compared over about 20 windows, as the UI asks for them."""
    if sum(1 for r in revisions if r.revision) < 2:
        return None
    window = max(60.0, round(length.total_seconds() / 20))
    try:
        return judge_canary(engine, CanaryRequest(span, window_seconds=window)).model_dump(mode="json")
    except QueryError as exc:
        return {"error": str(exc)}


def _table(table: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    title = html.escape(table.title)
    return f"<h3>{title}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(data: dict[str, Any], request: ReportRequest, generated: datetime) -> str:
    """The report's HTML: style, script and data inline; ``</`` escaped so the JSON cannot end its tag."""
    payload = orjson.dumps(data).decode().replace("</", "<\\/")
    script = (STATIC / "ui.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    style = (STATIC / "ui.css").read_text(encoding="utf-8")
    title = f"infersight report: {request.namespace}/{request.inferenceservice}"
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in request.notes)
    stamp = html.escape(format_time(generated))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{style}</style>
</head>
<body data-ready="false">
<header><h1>{html.escape(title)}</h1><span class="hint">generated {stamp}</span></header>
<main>
{"".join(_table(table) for table in request.tables)}
{f"<ul class='hint'>{notes}</ul>" if notes else ""}
<div id="main"><p>This report draws its charts with JavaScript.</p></div>
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{script}</script>
</body>
</html>
"""


def write_report(engine: Engine, request: ReportRequest, path: Path, generated: datetime) -> Path:
    """Write the report of ``request`` to ``path``; QueryError when the store holds nothing for it."""
    text = render_report(report_data(engine, request), request, generated)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
