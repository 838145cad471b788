"""What alibi-detect's ``predict`` dictionaries say, read into one shape for every detector family.

Univariate drift tests (KS, CVM, chi-square, tabular, FET) give a p-value and a distance per
feature and a corrected p-value threshold; multivariate ones (MMD, LSDD, classifier, learned
kernel) give one p-value and one distance; online detectors give a test statistic against a
threshold for the newest instance. Outlier and adversarial detectors give an instance score and
a flag per instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class DriftOutcome:
    """One drift test. ``threshold`` applies to ``p_value`` when there is one, else to ``statistic``."""

    detected: bool
    statistic: float | None
    p_value: float | None
    threshold: float | None
    feature_statistics: tuple[float, ...] = ()
    feature_p_values: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class InstanceScores:
    """Scores and flags of a batch of instances, in order."""

    scores: np.ndarray[Any, Any]
    flags: np.ndarray[Any, Any]
    threshold: float | None
    #: One row of per-feature scores per instance (``feature_score``), when the detector gives them.
    feature_scores: np.ndarray[Any, Any] | None = None


def _floats(value: Any) -> np.ndarray[Any, Any] | None:
    if value is None:
        return None
    return np.asarray(value, dtype=np.float64).reshape(-1)


def _scalar(value: float | np.floating[Any] | None) -> float | None:
    return None if value is None else float(value)


def batch_drift(data: Mapping[str, Any]) -> DriftOutcome:
    """A batch drift test's result (``predict(x)['data']``)."""
    p_values = _floats(data.get("p_val"))
    distances = _floats(data.get("distance"))
    per_feature = p_values is not None and p_values.size > 1
    return DriftOutcome(
        detected=bool(np.any(data["is_drift"])),
        statistic=_scalar(np.max(distances)) if distances is not None and distances.size else None,
        p_value=_scalar(np.min(p_values)) if p_values is not None and p_values.size else None,
        threshold=_scalar(data.get("threshold")),
        feature_statistics=tuple(distances.tolist()) if per_feature and distances is not None else (),
        feature_p_values=tuple(p_values.tolist()) if per_feature and p_values is not None else (),
    )


def online_drift(data: Mapping[str, Any]) -> DriftOutcome:
    """An online detector's result for its newest instance.

    Univariate online tests give a statistic per window size and feature; the feature's value is
    its largest excess over the threshold, and the test's is the largest of those.
    """
    statistics = np.asarray(data["test_stat"], dtype=np.float64)
    thresholds = np.asarray(data["threshold"], dtype=np.float64)
    if statistics.ndim < 2:
        return DriftOutcome(
            detected=bool(data["is_drift"]),
            statistic=float(statistics.max()),
            p_value=None,
            threshold=float(thresholds.min()),
        )
    # (window sizes, features) against thresholds per window size
    excess = statistics - thresholds.reshape(-1, 1)
    feature_statistics = statistics[np.argmax(excess, axis=0), np.arange(statistics.shape[1])]
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return DriftOutcome(
        detected=bool(data["is_drift"]),
        statistic=float(statistics[worst]),
        p_value=None,
        threshold=float(thresholds.reshape(-1)[worst[0]]),
        feature_statistics=tuple(feature_statistics.tolist()),
    )


def instance_scores(data: Mapping[str, Any], flag_key: str, threshold: float | None) -> InstanceScores:
    """An outlier or adversarial detector's scores (``instance_score``) and flags (``flag_key``)."""
    scores = np.asarray(data["instance_score"], dtype=np.float64).reshape(-1)
    flags = data.get(flag_key)
    if flags is None:
        flags = np.zeros(scores.shape, dtype=bool) if threshold is None else scores > threshold
    features = data.get("feature_score")
    per_feature = None
    if features is not None:
        per_feature = np.asarray(features, dtype=np.float64).reshape(scores.shape[0], -1)
    return InstanceScores(
        scores=scores,
        flags=np.asarray(flags, dtype=bool).reshape(-1),
        threshold=threshold,
        feature_scores=per_feature,
    )
