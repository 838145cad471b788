"""What the pipeline reported, per phase: read from the detections topic and the store, matched by id.

Nothing here scores anything: drift verdicts are the worker's detection events (a window belongs
to the phase most of its request ids came from), flags and accuracy are the store's columns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from infersight.demo.phases import Phase, Planned
from infersight.sinks.store.models import Inference


@dataclass(frozen=True)
class Stored:
    """The store's view of one inference."""

    request_id: str
    outlier: bool | None
    outlier_score: float | None
    adversarial: bool | None
    adversarial_score: float | None
    correct: bool | None
    time: datetime


def read_store(engine: Engine, namespace: str, since: datetime, wanted: set[str]) -> dict[str, Stored]:
    """This run's rows (by request id), as the worker stored them."""
    c = Inference.__table__.c
    query = select(
        c.request_id, c.outlier, c.outlier_score, c.adversarial, c.adversarial_score, c.correct, c.time
    ).where(c.namespace == namespace, c.time >= since)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {row.request_id: Stored(*row) for row in rows if row.request_id in wanted}


@dataclass
class Flags:
    """One flag kind in one phase: hits among the injected, false alarms among the rest."""

    injected: int = 0
    caught: int = 0
    clean: int = 0
    false_alarms: int = 0


@dataclass
class Windows:
    tested: int = 0
    detected: int = 0


@dataclass
class PhaseResult:
    phase: Phase
    sent: int = 0
    stored: int = 0
    drift: dict[str, Windows] = field(default_factory=dict)
    outliers: Flags = field(default_factory=Flags)
    adversarial: Flags = field(default_factory=Flags)
    labelled: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


def drift_phase(detection: dict[str, Any], phase_of: dict[str, str]) -> str | None:
    """The phase most of a drift window's request ids belong to."""
    votes = Counter(phase_of[r] for r in detection.get("request_ids", []) if r in phase_of)
    return votes.most_common(1)[0][0] if votes else None


def _count(
    flags: Flags, planned: Planned, injected_as: str, flagged: bool | None, score: float | None
) -> None:
    if score is None:
        return  # no detector of this kind watches this model
    if planned.injected == injected_as:
        flags.injected += 1
        flags.caught += bool(flagged)
    elif planned.injected is None:  # a drifted or attacked input flagged as an outlier is no false alarm
        flags.clean += 1
        flags.false_alarms += bool(flagged)


def tally(
    phases: Sequence[Phase], detections: Iterable[dict[str, Any]], stored: dict[str, Stored]
) -> list[PhaseResult]:
    results = {phase.name: PhaseResult(phase) for phase in phases}
    phase_of = {p.request_id: phase.name for phase in phases for p in phase.inferences}
    drift_names = sorted({d["detector"] for d in detections if d.get("kind") == "drift"})
    for result in results.values():
        result.drift = {name: Windows() for name in drift_names}
    for detection in detections:
        if detection.get("kind") != "drift":
            continue
        name = drift_phase(detection, phase_of)
        if name is None:
            continue
        windows = results[name].drift[detection["detector"]]
        windows.tested += 1
        windows.detected += bool(detection.get("detected"))
    for phase in phases:
        result = results[phase.name]
        for planned in phase.inferences:
            result.sent += 1
            row = stored.get(planned.request_id)
            if row is None:
                continue
            result.stored += 1
            _count(result.outliers, planned, "outlier", row.outlier, row.outlier_score)
            _count(result.adversarial, planned, "adversarial", row.adversarial, row.adversarial_score)
            if row.correct is not None:
                result.labelled += 1
                result.correct += row.correct
    return list(results.values())
