"""What the web UI and the report draw: traffic and accuracy over time, feature distributions.

Both answer from the store alone. Buckets are formed in SQL with one ``CASE`` over the range, so
one indexed scan counts them on SQLite and PostgreSQL alike; distributions read the stored inputs
of a window and of a reference, at most ``sample`` inferences each, and bin them in numpy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, case, func, literal, select

from infersight.sinks.store import tensors
from infersight.sinks.store.filters import (
    DETECTIONS,
    INFERENCES,
    PayloadFilter,
    QueryError,
    all_of,
    payload_conditions,
)
from infersight.sinks.store.query import count_where
from infersight.sinks.store.views import Bucket, FeatureDistribution, Histogram, Timeline, WindowDistributions


def _span(engine: Engine, where: PayloadFilter) -> tuple[datetime, datetime] | None:
    """The filter's own span, filled in from the first and last stored inference it matches."""
    if where.since is not None and where.until is not None:
        return where.since, where.until
    c = INFERENCES.c
    with engine.connect() as connection:
        matching = all_of(payload_conditions(connection, where))
        first, last = connection.execute(select(func.min(c.time), func.max(c.time)).where(matching)).one()
    if first is None:
        return None
    return where.since or first, where.until or last + timedelta(microseconds=1)


def timeline(engine: Engine, where: PayloadFilter, buckets: int = 60) -> Timeline:
    """Inferences, flags, labels and right predictions per bucket of ``where``'s span."""
    span = _span(engine, where)
    if span is None:
        return Timeline(buckets=[])
    start, end = span
    width = max((end - start) / buckets, timedelta(seconds=1))
    edges = [start + width * index for index in range(1, buckets)]
    c = INFERENCES.c
    whens = [(c.time < edge, index) for index, edge in enumerate(edges)]
    bucket = case(*whens, else_=literal(len(edges))) if whens else literal(0)
    with engine.connect() as connection:
        conditions = [*payload_conditions(connection, where), c.time >= start, c.time < end]
        rows = (
            select(bucket.label("bucket"), c.outlier, c.adversarial, c.label, c.correct)
            .where(all_of(conditions))
            .subquery()
        )
        r = rows.c
        query = select(
            r.bucket,
            func.count().label("inferences"),
            count_where(r.outlier.is_(True)).label("outliers"),
            count_where(r.adversarial.is_(True)).label("adversarial"),
            count_where(r.label.is_not(None)).label("labelled"),
            count_where(r.correct.is_(True)).label("correct"),
        ).group_by(r.bucket)
        counted = {row["bucket"]: row for row in connection.execute(query).mappings()}
    out = []
    for index in range(buckets):
        row = counted.get(index)
        counts = {name: int(row[name]) if row else 0 for name in Bucket.counts()}
        out.append(Bucket(start=start + width * index, end=start + width * (index + 1), **counts))
    return Timeline(buckets=out)


def _columns(payload: list[dict[str, Any]] | None, side: str) -> tuple[dict[str, int], list[list[Any]]]:
    """A side's features by name (as :mod:`infersight.featurenames` names them) and its rows."""
    found = payload or []
    if not found:
        return {}, []
    instances = tensors.instance_count(found)
    names = [name for name, _ in tensors.columns(found, instances, side)]
    return {name: index for index, name in enumerate(names)}, tensors.rows(found, instances)


_SIDES = {"request.": "input", "response.": "output"}


def _feature_values(items: Sequence[dict[str, Any]], features: Sequence[str]) -> dict[str, list[float]]:
    """Each feature's numeric values over ``items``' instances, found by its name on either side."""
    values: dict[str, list[float]] = {feature: [] for feature in features}
    for item in items:
        sides = {"input": _columns(item["inputs"], "input"), "output": _columns(item["outputs"], "output")}
        for feature in features:
            prefix = next((p for p in _SIDES if feature.startswith(p)), None)
            name = feature[len(prefix) :] if prefix else feature
            order = [_SIDES[prefix]] if prefix else ["input", "output"]
            side = next((s for s in order if name in sides[s][0]), None)
            if side is None:
                continue
            index, rows = sides[side][0][name], sides[side][1]
            for row in rows:
                value = row[index] if index < len(row) else None
                if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                    values[feature].append(float(value))
    return values


def _sampled_inputs(engine: Engine, where: PayloadFilter, sample: int) -> list[dict[str, Any]]:
    c = INFERENCES.c
    with engine.connect() as connection:
        query = (
            select(c.inputs, c.outputs)
            .where(all_of(payload_conditions(connection, where)))
            .order_by(c.time.desc(), c.id.desc())
            .limit(sample)
        )
        return [dict(row) for row in connection.execute(query).mappings()]


def _histogram(values: Sequence[float], edges: np.ndarray[Any, Any]) -> Histogram:
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=edges)
    return Histogram(count=len(values), counts=counts.tolist())


def distributions(
    engine: Engine,
    detection_id: str,
    *,
    reference: PayloadFilter | None = None,
    bins: int = 20,
    sample: int = 2000,
) -> WindowDistributions:
    """A drift window's features beside a reference, binned alike: histograms and the window's p-values.

    The reference is, unless given, the same model's traffic before the window that lies outside
    every window where drift was found: what the detectors last judged normal.
    """
    d = DETECTIONS.c
    with engine.connect() as connection:
        row = connection.execute(select(DETECTIONS).where(d.id == detection_id)).mappings().first()
    if row is None:
        raise QueryError(f"no detection with id {detection_id!r}")
    model = {
        "namespace": row["namespace"],
        "inferenceservice": row["inferenceservice"],
        "component": row["component"] or None,
        "endpoint": row["endpoint"] or None,
    }
    if reference is None:
        reference = PayloadFilter(**model, until=row["window_start"], in_drift=False)
    else:
        reference = dataclasses.replace(reference, **model)
    features: list[str] = list(row["features"] or [])
    current = _feature_values(
        _sampled_inputs(engine, PayloadFilter(detection=detection_id), sample), features
    )
    before = _feature_values(_sampled_inputs(engine, reference, sample), features)
    p_values = list(row["feature_p_values"] or [])
    statistics = list(row["feature_statistics"] or [])
    out = []
    for position, feature in enumerate(features):
        both = current[feature] + before[feature]
        if both:
            low, high = min(both), max(both)
            edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
        else:
            edges = np.linspace(0.0, 1.0, bins + 1)
        out.append(
            FeatureDistribution(
                feature=feature,
                edges=edges.tolist(),
                reference=_histogram(before[feature], edges),
                current=_histogram(current[feature], edges),
                p_value=p_values[position] if position < len(p_values) else None,
                statistic=statistics[position] if position < len(statistics) else None,
            )
        )
    return WindowDistributions(
        detection=detection_id,
        detector=row["detector"],
        threshold=row["threshold"],
        window_start=row["window_start"],
        window_end=row["window_end"],
        features=out,
    )
