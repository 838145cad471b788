"""Canary analysis: does a candidate revision's traffic differ from its baseline's, window by window?

In each window both revisions served, four questions, each at a quarter of the level ``p_val``
(Bonferroni), so that a window of two identical revisions is called different at most ``p_val`` of
the time: do the inputs differ (alibi-detect's KSDrift, the baseline's window as reference, itself
corrected over features), do the predictions (ChiSquareDrift for classes, KSDrift for numbers), is
the candidate flagged as an outlier more often, and, with feedback, is it right less often (one-
sided Fisher exact tests). The rollout's verdict reads the latest windows: ``roll back`` when the
last ``confirm`` windows with enough traffic all differ, ``promote`` when at least ``confirm``
were tested and none of the last ``confirm`` differs, ``hold`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
from sqlalchemy import Engine

from infersight.sinks.store.filters import PayloadFilter, QueryError
from infersight.sinks.store.query import list_revisions
from infersight.sinks.store.revisions import shared_windows
from infersight.sinks.store.views import CanaryVerdict, CanaryWindow

Verdict = Literal["promote", "hold", "roll back"]
#: The questions asked per window, among which the level is shared.
FAMILIES = 4
Array = np.ndarray[Any, Any]


class Traffic(Protocol):
    """One revision's inferences in one window."""

    predictions: list[Any]
    outliers: list[bool]
    correct: list[bool]

    def rows(self) -> Array: ...


@dataclass(frozen=True)
class RolloutVerdict:
    verdict: Verdict
    reason: str


def _p_value(data: dict[str, Any]) -> Array:
    return np.asarray(data["data"]["p_val"], dtype=np.float64).reshape(-1)


def _inputs_p(baseline: Array, candidate: Array, level: float) -> float | None:
    if baseline.ndim != 2 or candidate.ndim != 2 or not baseline.size or not candidate.size:
        return None
    if baseline.shape[1] != candidate.shape[1]:
        return 0.0  # another number of features: the inputs differ outright
    from alibi_detect.cd import KSDrift

    detector = KSDrift(baseline.astype(np.float32), p_val=level, correction="bonferroni")
    p_values = _p_value(detector.predict(candidate.astype(np.float32)))
    # Bonferroni over features: the smallest p-value, times the features, is the window's.
    return float(min(1.0, p_values.min() * p_values.size))


def _predictions_p(baseline: list[Any], candidate: list[Any], level: float) -> float | None:
    base = [p for p in baseline if p is not None]
    cand = [p for p in candidate if p is not None]
    if not base or not cand:
        return None
    if all(isinstance(p, bool | int | str) for p in base + cand):
        from alibi_detect.cd import ChiSquareDrift

        classes = sorted({str(p) for p in base + cand})
        if len(classes) < 2:
            return 1.0
        code = {name: index for index, name in enumerate(classes)}
        reference = np.asarray([[code[str(p)]] for p in base])
        chi = ChiSquareDrift(reference, p_val=level, categories_per_feature={0: len(classes)})
        return float(_p_value(chi.predict(np.asarray([[code[str(p)]] for p in cand])))[0])
    if all(isinstance(p, int | float) for p in base + cand):
        from alibi_detect.cd import KSDrift

        ks = KSDrift(np.asarray(base, dtype=np.float32).reshape(-1, 1), p_val=level)
        return float(_p_value(ks.predict(np.asarray(cand, dtype=np.float32).reshape(-1, 1)))[0])
    return None


def _more_often(baseline: Sequence[bool], candidate: Sequence[bool]) -> float | None:
    """One-sided Fisher exact: is ``True`` more frequent in the candidate?"""
    if not baseline or not candidate:
        return None
    from scipy.stats import fisher_exact

    hits, base_hits = sum(candidate), sum(baseline)
    table = [[hits, len(candidate) - hits], [base_hits, len(baseline) - base_hits]]
    return float(fisher_exact(table, alternative="greater")[1])


def judge_window(
    start: datetime, end: datetime, baseline: Traffic, candidate: Traffic, p_val: float, min_instances: int
) -> CanaryWindow:
    """The four questions for one window, each at ``p_val / 4``."""
    base_n, cand_n = len(baseline.predictions), len(candidate.predictions)
    sizes = {"start": start, "end": end, "baseline_instances": base_n, "candidate_instances": cand_n}
    if min(base_n, cand_n) < min_instances:
        unasked = {"inputs_p": None, "predictions_p": None, "outliers_p": None, "accuracy_p": None}
        return CanaryWindow(**sizes, **unasked, call="too few", reasons=[])
    level = p_val / FAMILIES
    accuracy = None
    if min(len(baseline.correct), len(candidate.correct)) >= min_instances:
        accuracy = _more_often(
            [not right for right in baseline.correct], [not right for right in candidate.correct]
        )
    asked = {
        "inputs": _inputs_p(baseline.rows(), candidate.rows(), level),
        "predictions": _predictions_p(baseline.predictions, candidate.predictions, level),
        "outlier rate": _more_often(baseline.outliers, candidate.outliers),
        "accuracy": accuracy,
    }
    reasons = [f"{name} (p {p:.2g})" for name, p in asked.items() if p is not None and p < level]
    return CanaryWindow(
        **sizes,
        inputs_p=asked["inputs"],
        predictions_p=asked["predictions"],
        outliers_p=asked["outlier rate"],
        accuracy_p=accuracy,
        call="differs" if reasons else "same",
        reasons=reasons,
    )


def judge_rollout(windows: list[CanaryWindow], confirm: int = 3) -> RolloutVerdict:
    """Promote, hold or roll back, from the latest windows with enough traffic."""
    tested = [window for window in windows if window.call != "too few"]
    latest = tested[-confirm:]
    if len(tested) < confirm:
        return RolloutVerdict("hold", f"{len(tested)} of {confirm} windows with enough traffic so far")
    if all(window.call == "differs" for window in latest):
        reasons = sorted({reason.split(" (")[0] for window in latest for reason in window.reasons})
        return RolloutVerdict("roll back", f"the last {confirm} windows differ: {', '.join(reasons)}")
    if not any(window.call == "differs" for window in latest):
        return RolloutVerdict("promote", f"the last {confirm} windows show no difference")
    return RolloutVerdict("hold", "the latest windows disagree")


@dataclass(frozen=True)
class CanaryRequest:
    """What to compare: a model (``where``), two of its revisions (None: first and last seen), how."""

    where: PayloadFilter
    baseline: str | None = None
    candidate: str | None = None
    window_seconds: float = 300.0
    p_val: float = 0.05
    min_instances: int = 30
    confirm: int = 3


def _revisions(engine: Engine, request: CanaryRequest) -> tuple[str, str]:
    named = [r for r in list_revisions(engine, request.where) if r.revision]
    if len({(r.namespace, r.inferenceservice, r.component) for r in named}) > 1:
        raise QueryError("several models or components match: name the namespace, service and component")
    known = [r.revision for r in named]
    stored = ", ".join(known) or "none"
    baseline, candidate = request.baseline, request.candidate
    if baseline is None or candidate is None:
        if len(known) < 2:
            raise QueryError(f"{len(known)} revision(s) in the store ({stored}): a canary needs two")
        baseline = baseline or known[0]
        candidate = candidate or next(name for name in reversed(known) if name != baseline)
    for name in (baseline, candidate):
        if name not in known:
            raise QueryError(f"no inferences of revision {name!r} (stored: {stored})")
    return baseline, candidate


def judge_canary(engine: Engine, request: CanaryRequest) -> CanaryVerdict:
    """The candidate against the baseline, window by window over the span both served, and the rollout."""
    baseline, candidate = _revisions(engine, request)
    windows = shared_windows(
        engine, request.where, baseline, candidate, timedelta(seconds=request.window_seconds)
    )
    if not windows:
        raise QueryError(f"{baseline} and {candidate} never served in the same span")
    judged = [
        judge_window(w.start, w.end, w.baseline, w.candidate, request.p_val, request.min_instances)
        for w in windows
    ]
    rollout = judge_rollout(judged, request.confirm)
    return CanaryVerdict(
        namespace=request.where.namespace,
        inferenceservice=request.where.inferenceservice,
        baseline=baseline,
        candidate=candidate,
        verdict=rollout.verdict,
        reason=rollout.reason,
        p_val=request.p_val,
        windows=judged,
    )
