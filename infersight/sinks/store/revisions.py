"""Two revisions' stored traffic over the same time windows: what canary analysis compares.

Each window holds, per revision, the inputs of its inferences as rows of features (the request's
first tensor, as a detector reads it), the predicted classes, the outlier flags and, where
feedback came, whether each prediction was right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from infersight.sinks.store import tensors
from infersight.sinks.store.filters import INFERENCES, PayloadFilter, all_of, payload_conditions


@dataclass
class RevisionTraffic:
    """One revision's inferences in one window."""

    inputs: list[list[float]] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    outliers: list[bool] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)

    def rows(self) -> np.ndarray[Any, Any]:
        """The inputs as a float matrix (instances by features); rows of another width are left out."""
        if not self.inputs:
            return np.empty((0, 0))
        width = max(set(map(len, self.inputs)), key=[len(row) for row in self.inputs].count)
        return np.asarray([row for row in self.inputs if len(row) == width], dtype=np.float64)


@dataclass
class SharedWindow:
    """A stretch of time both revisions served in, and each one's traffic in it."""

    start: datetime
    end: datetime
    baseline: RevisionTraffic
    candidate: RevisionTraffic


def _add(traffic: RevisionTraffic, row: Any) -> None:
    found = row.inputs or []
    rows = tensors.detector_rows(found, None)
    if rows is not None:
        traffic.inputs.extend(rows.tolist())
    for index in range(max(tensors.instance_count(found), 1) if found else 0):
        prediction = row.prediction[index] if row.prediction and index < len(row.prediction) else None
        traffic.predictions.append(prediction)
        traffic.outliers.append(bool(row.outlier))
    if row.correct is not None:
        traffic.correct.append(bool(row.correct))


def shared_windows(
    engine: Engine, where: PayloadFilter, baseline: str, candidate: str, window: timedelta
) -> list[SharedWindow]:
    """Windows of ``window`` over the span both revisions served (``where`` names the model and
    may bound the span), oldest first; a window without traffic of both is left out."""
    c = INFERENCES.c
    columns = (c.time, c.revision, c.inputs, c.prediction, c.outlier, c.correct)
    with engine.connect() as connection:
        conditions = [*payload_conditions(connection, where), c.revision.in_([baseline, candidate])]
        query = select(*columns).where(all_of(conditions)).order_by(c.time)
        rows = connection.execute(query).all()
    spans = {name: [row.time for row in rows if row.revision == name] for name in (baseline, candidate)}
    if not spans[baseline] or not spans[candidate]:
        return []
    start = max(spans[baseline][0], spans[candidate][0])
    end = min(spans[baseline][-1], spans[candidate][-1])
    windows: dict[int, SharedWindow] = {}
    for row in rows:
        if row.time < start or row.time > end:
            continue
        index = int((row.time - start) / window)
        shared = windows.get(index)
        if shared is None:
            opened = start + window * index
            shared = windows[index] = SharedWindow(
                opened, opened + window, RevisionTraffic(), RevisionTraffic()
            )
        _add(shared.baseline if row.revision == baseline else shared.candidate, row)
    return [windows[index] for index in sorted(windows)]
