"""Reading the store: models with counts, payloads and detections page by page (newest first)."""

from __future__ import annotations

import base64
from typing import Any, cast

from sqlalchemy import Engine, Integer, Table, case, func, select
from sqlalchemy.sql.functions import coalesce

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
from infersight.sinks.store.views import Detection, DetectionPage, ModelSummary, Payload, PayloadPage

ACCURACY = cast(Table, ModelAccuracy.__table__)

_SUMMARY = (
    "id", "request_id", "namespace", "inferenceservice", "endpoint", "time", "protocol", "instances",
    "outlier", "outlier_score", "adversarial", "adversarial_score", "prediction", "label", "label_time",
    "correct", "request_time", "response_time", "inputs", "outputs", "scores", "metadata",
    "request_attributes", "response_attributes",
)  # fmt: skip


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0)).cast(Integer)


def list_models(engine: Engine) -> list[ModelSummary]:
    """Every model with stored inferences or detections: counts, first and last seen, accuracy."""
    i, d, a = INFERENCES.c, DETECTIONS.c, ACCURACY.c
    key = ("namespace", "inferenceservice", "endpoint")
    inferences = select(
        i.namespace, i.inferenceservice, i.endpoint,
        func.count().label("inferences"), func.min(i.time).label("first_seen"), func.max(i.time).label("last_seen"),
        _count(i.outlier.is_(True)).label("outliers"), _count(i.adversarial.is_(True)).label("adversarial"),
        _count(i.label.is_not(None)).label("labelled"),
    ).group_by(i.namespace, i.inferenceservice, i.endpoint)  # fmt: skip
    detections = select(
        d.namespace, d.inferenceservice, d.endpoint, func.count().label("detections"),
        _count((d.kind == DRIFT) & d.detected.is_(True)).label("drift_detected"),
        func.min(d.time).label("first_seen"), func.max(d.time).label("last_seen"),
    ).group_by(d.namespace, d.inferenceservice, d.endpoint)  # fmt: skip
    with engine.connect() as connection:
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in connection.execute(inferences).mappings():
            found[tuple(row[k] for k in key)] = {  # type: ignore[index]
                **row, "detections": 0, "drift_detected": 0, "accuracy": None
            }
        for row in connection.execute(detections).mappings():
            model = cast(tuple[str, str, str], tuple(row[k] for k in key))
            entry = found.setdefault(
                model,
                {**row, "inferences": 0, "outliers": 0, "adversarial": 0, "labelled": 0, "accuracy": None},
            )
            entry.update(detections=row["detections"], drift_detected=row["drift_detected"])
            entry["first_seen"] = min(entry["first_seen"], row["first_seen"])
            entry["last_seen"] = max(entry["last_seen"], row["last_seen"])
        for row in connection.execute(select(a.namespace, a.inferenceservice, a.endpoint, a.labelled, a.correct)):
            model = (row.namespace, row.inferenceservice, row.endpoint)
            if model in found and row.labelled:
                found[model]["accuracy"] = row.correct / row.labelled
    return [ModelSummary.model_validate(found[model]) for model in sorted(found)]


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
    names = _SUMMARY if detail else _SUMMARY[: _SUMMARY.index("inputs")]
    columns = [c[name] for name in names]
    if bodies:
        columns += [c.request_body, c.response_body]
    with engine.connect() as connection:
        conditions = payload_conditions(connection, where)
        if cursor:
            conditions.append(cursors.after(c.time, c.id, cursor))
        query = select(*columns).where(all_of(conditions)).order_by(c.time.desc(), c.id.desc()).limit(limit + 1)
        rows = [dict(row) for row in connection.execute(query).mappings()]
    for row in rows:
        for side in ("request_body", "response_body"):
            if row.get(side) is not None:
                row[side] = base64.b64encode(row[side]).decode()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursors.encode(rows[-1]["time"], rows[-1]["id"]) if more else None
    return PayloadPage(items=[Payload.model_validate(row) for row in rows], next_cursor=next_cursor)


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
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursors.encode(rows[-1]["time"], rows[-1]["id"]) if more else None
    return DetectionPage(items=[Detection.model_validate(row) for row in rows], next_cursor=next_cursor)


def count_payloads(engine: Engine, where: PayloadFilter) -> int:
    """How many stored inferences match: the export's progress total."""
    with engine.connect() as connection:
        query = select(func.count()).select_from(INFERENCES).where(all_of(payload_conditions(connection, where)))
        return int(connection.execute(query).scalar_one())


__all__ = ["coalesce", "count_payloads", "list_detections", "list_models", "list_payloads"]
