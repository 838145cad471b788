"""Reading the store: models with counts, payloads and detections page by page (newest first)."""

from __future__ import annotations

import base64
from typing import Any, cast

from sqlalchemy import Engine, Integer, Select, Table, case, func, select

from infersight.records import DRIFT
from infersight.sinks.store import cursor as cursors
from infersight.sinks.store.filters import (
    DETECTIONS,
    INFERENCES,
    DetectionFilter,
    PayloadFilter,
    all_of,
    detection_conditions,
    payload_conditions,
)
from infersight.sinks.store.models import ModelAccuracy
from infersight.sinks.store.views import (
    Detection,
    DetectionPage,
    ModelSummary,
    Payload,
    PayloadPage,
    RevisionSummary,
)

ACCURACY = cast(Table, ModelAccuracy.__table__)
ModelKey = tuple[str, str, str, str]

_SUMMARY = (
    "id", "request_id", "namespace", "inferenceservice", "component", "endpoint", "revision", "occurrence",
    "time", "protocol", "instances", "outlier", "outlier_score", "adversarial", "adversarial_score",
    "prediction", "label", "label_time", "correct", "request_time", "response_time",
)  # fmt: skip
_DETAIL = (
    "inputs", "outputs", "scores", "metadata", "annotations", "request_attributes", "response_attributes",
)  # fmt: skip


def count_where(condition: Any) -> Any:
    """How many rows of a group meet ``condition`` (0, not NULL, for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


def _traffic() -> list[Any]:
    """What a group of inferences counts: how many, first and last seen, flagged, labelled."""
    i = INFERENCES.c
    return [
        func.count().label("inferences"),
        func.min(i.time).label("first_seen"),
        func.max(i.time).label("last_seen"),
        count_where(i.outlier.is_(True)).label("outliers"),
        count_where(i.adversarial.is_(True)).label("adversarial"),
        count_where(i.label.is_not(None)).label("labelled"),
    ]


def _inference_counts() -> Select[Any]:
    i = INFERENCES.c
    model = (i.namespace, i.inferenceservice, i.component, i.endpoint)
    return select(*model, *_traffic()).group_by(*model)


def _detection_counts() -> Select[Any]:
    d = DETECTIONS.c
    return select(
        d.namespace,
        d.inferenceservice,
        d.component,
        d.endpoint,
        func.count().label("detections"),
        count_where((d.kind == DRIFT) & d.detected.is_(True)).label("drift_detected"),
        func.min(d.time).label("first_seen"),
        func.max(d.time).label("last_seen"),
    ).group_by(d.namespace, d.inferenceservice, d.component, d.endpoint)


def _key(row: Any) -> ModelKey:
    return (row["namespace"], row["inferenceservice"], row["component"], row["endpoint"])


def list_models(engine: Engine) -> list[ModelSummary]:
    """Every model with stored inferences or detections: counts, first and last seen, accuracy."""
    empty = {"inferences": 0, "outliers": 0, "adversarial": 0, "labelled": 0, "detections": 0}
    found: dict[ModelKey, dict[str, Any]] = {}
    a = ACCURACY.c
    with engine.connect() as connection:
        for row in connection.execute(_inference_counts()).mappings():
            found[_key(row)] = {**empty, "drift_detected": 0, "accuracy": None, **row}
        for row in connection.execute(_detection_counts()).mappings():
            entry = found.setdefault(_key(row), {**empty, "accuracy": None, **row})
            entry.update(detections=row["detections"], drift_detected=row["drift_detected"])
            entry["first_seen"] = min(entry["first_seen"], row["first_seen"])
            entry["last_seen"] = max(entry["last_seen"], row["last_seen"])
        accuracy = select(a.namespace, a.inferenceservice, a.component, a.endpoint, a.labelled, a.correct)
        for row in connection.execute(accuracy).mappings():
            if _key(row) in found and row["labelled"]:
                found[_key(row)]["accuracy"] = row["correct"] / row["labelled"]
    return [ModelSummary.model_validate(found[model]) for model in sorted(found)]


def _next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    """The cursor after the page's last row, when the query found one row more than the page holds."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return cursors.encode(last["time"], last["id"])


def list_payloads(
    engine: Engine,
    where: PayloadFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    detail: bool = True,
    bodies: bool = False,
) -> PayloadPage:
    """One page of stored inferences, newest first; ``detail`` adds tensors, scores and attributes."""
    c = INFERENCES.c
    names = [*_SUMMARY, *(_DETAIL if detail else ()), *(("request_body", "response_body") if bodies else ())]
    with engine.connect() as connection:
        conditions = payload_conditions(connection, where)
        if cursor:
            conditions.append(cursors.after(c.time, c.id, cursor))
        query = (
            select(*(c[name] for name in names))
            .where(all_of(conditions))
            .order_by(c.time.desc(), c.id.desc())
            .limit(limit + 1)
        )
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        for side in ("request_body", "response_body"):
            if row.get(side) is not None:
                row[side] = base64.b64encode(row[side]).decode()
    items = [Payload.model_validate(row) for row in rows[:limit]]
    return PayloadPage(items=items, next_cursor=_next_cursor(rows, limit))


def list_detections(
    engine: Engine, where: DetectionFilter, *, limit: int = 100, cursor: str | None = None
) -> DetectionPage:
    """One page of detections, newest first."""
    c = DETECTIONS.c
    conditions = detection_conditions(where)
    if cursor:
        conditions.append(cursors.after(c.time, c.id, cursor))
    columns = [column for column in DETECTIONS.columns if column.name != "stored_at"]
    query = select(*columns).where(all_of(conditions)).order_by(c.time.desc(), c.id.desc()).limit(limit + 1)
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(query).mappings()]
    items = [Detection.model_validate(row) for row in rows[:limit]]
    return DetectionPage(items=items, next_cursor=_next_cursor(rows, limit))


def count_payloads(engine: Engine, where: PayloadFilter) -> int:
    """How many stored inferences match: the export's progress total."""
    with engine.connect() as connection:
        matching = all_of(payload_conditions(connection, where))
        query = select(func.count()).select_from(INFERENCES).where(matching)
        return int(connection.execute(query).scalar_one())


def list_revisions(engine: Engine, where: PayloadFilter) -> list[RevisionSummary]:
    """The revisions that served the inferences ``where`` selects, oldest first seen first."""
    i = INFERENCES.c
    with engine.connect() as connection:
        model = (i.namespace, i.inferenceservice, i.component, i.revision)
        query = (
            select(*model, *_traffic(), count_where(i.correct.is_(True)).label("correct"))
            .where(all_of(payload_conditions(connection, where)))
            .group_by(*model)
            .order_by(func.min(i.time))
        )
        rows = connection.execute(query).mappings().all()
    return [RevisionSummary.model_validate(dict(row)) for row in rows]
