"""What query, export and the API filter by, as SQL conditions with every value a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, false, or_, select

from infersight.records import DRIFT
from infersight.sinks.store.models import DetectionRow, Inference

INFERENCES = cast(Table, Inference.__table__)
DETECTIONS = cast(Table, DetectionRow.__table__)


class QueryError(ValueError):
    """A filter that cannot be applied (an unknown detection, a bad cursor); the message says which."""


def _refuse_nul(where: PayloadFilter | DetectionFilter) -> None:
    """PostgreSQL text cannot hold NUL and refuses such a value outright: refuse it on every store alike."""
    for field in fields(where):
        value = getattr(where, field.name)
        if isinstance(value, str) and "\x00" in value:
            raise QueryError(f"{field.name} must not contain NUL characters")


@dataclass(frozen=True)
class PayloadFilter:
    """Stored inferences to select; None leaves a criterion out.

    ``outlier=False`` means not flagged, which includes inferences no outlier detector looked at.
    ``in_drift`` keeps inferences inside (or outside) a window where a drift detector found drift;
    ``detection`` keeps those in one detection's window (its request ids, else its time span).
    """

    namespace: str | None = None
    inferenceservice: str | None = None
    endpoint: str | None = None
    #: The KServe component (``predictor``, ``transformer``, ``explainer``; "" for none named).
    component: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outlier: bool | None = None
    adversarial: bool | None = None
    labelled: bool | None = None
    in_drift: bool | None = None
    detection: str | None = None
    #: The revision that served the inference (:mod:`infersight.revisions`).
    revision: str | None = None

    def __post_init__(self) -> None:
        _refuse_nul(self)


@dataclass(frozen=True)
class DetectionFilter:
    """Stored detections to select; ``since``/``until`` keep windows that overlap the span."""

    namespace: str | None = None
    inferenceservice: str | None = None
    endpoint: str | None = None
    #: The KServe component (``predictor``, ``transformer``, ``explainer``; "" for none named).
    component: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kind: str | None = None
    detector: str | None = None
    detected: bool | None = None

    def __post_init__(self) -> None:
        _refuse_nul(self)


def _model(table: Table, where: PayloadFilter | DetectionFilter) -> list[Any]:
    c = table.c
    conditions = []
    if where.namespace is not None:
        conditions.append(c.namespace == where.namespace)
    if where.inferenceservice is not None:
        conditions.append(c.inferenceservice == where.inferenceservice)
    if where.component is not None:
        conditions.append(c.component == where.component)
    if where.endpoint is not None:
        conditions.append(c.endpoint == where.endpoint)
    return conditions


def _flag(column: Any, wanted: bool | None) -> list[Any]:
    if wanted is None:
        return []
    return [column.is_(True)] if wanted else [or_(column.is_(None), column.is_(False))]


def _in_drift_window() -> ColumnElement[bool]:
    i, d = INFERENCES.c, DETECTIONS.c
    return exists(
        select(d.id).where(
            d.kind == DRIFT,
            d.detected.is_(True),
            d.namespace == i.namespace,
            d.inferenceservice == i.inferenceservice,
            or_(d.component == i.component, d.component == ""),
            or_(d.endpoint == i.endpoint, d.endpoint == ""),
            i.time >= d.window_start,
            i.time <= d.window_end,
        )
    )


def _detection_window(connection: Connection, detection_id: str) -> list[Any]:
    d, i = DETECTIONS.c, INFERENCES.c
    model = (d.namespace, d.inferenceservice, d.component, d.endpoint)
    columns = (*model, d.window_start, d.window_end, d.request_ids)
    row = connection.execute(select(*columns).where(d.id == detection_id)).first()
    if row is None:
        raise QueryError(f"no detection with id {detection_id!r}")
    conditions = [i.namespace == row.namespace, i.inferenceservice == row.inferenceservice]
    if row.component:
        conditions.append(i.component == row.component)
    if row.endpoint:
        conditions.append(i.endpoint == row.endpoint)
    ids: Sequence[str] = row.request_ids or []
    if ids:
        conditions.append(i.request_id.in_(list(ids)))
    else:
        conditions += [i.time >= row.window_start, i.time <= row.window_end]
    return conditions


def payload_conditions(connection: Connection, where: PayloadFilter) -> list[Any]:
    """The WHERE conditions on ``inferences`` for ``where``; looks a named detection up first."""
    c = INFERENCES.c
    conditions = _model(INFERENCES, where)
    if where.since is not None:
        conditions.append(c.time >= where.since)
    if where.until is not None:
        conditions.append(c.time < where.until)
    conditions += _flag(c.outlier, where.outlier)
    conditions += _flag(c.adversarial, where.adversarial)
    if where.labelled is not None:
        conditions.append(c.label.is_not(None) if where.labelled else c.label.is_(None))
    if where.in_drift is not None:
        conditions.append(_in_drift_window() if where.in_drift else ~_in_drift_window())
    if where.detection is not None:
        conditions += _detection_window(connection, where.detection)
    if where.revision is not None:
        conditions.append(c.revision == where.revision)
    return conditions


def detection_conditions(where: DetectionFilter) -> list[Any]:
    c = DETECTIONS.c
    conditions = _model(DETECTIONS, where)
    if where.since is not None:
        conditions.append(c.window_end >= where.since)
    if where.until is not None:
        conditions.append(c.window_start < where.until)
    if where.kind is not None:
        conditions.append(c.kind == where.kind)
    if where.detector is not None:
        conditions.append(c.detector == where.detector)
    if where.detected is not None:
        conditions.append(c.detected.is_(where.detected))
    return conditions


def all_of(conditions: Sequence[Any]) -> ColumnElement[bool]:
    """AND of the conditions (true when there are none)."""
    return and_(*conditions) if conditions else ~false()
