"""Which alibi-detect classes infersight runs, and how each is fed.

A detector is one of three families: a batch drift test over a window, an online drift detector
fed one instance at a time, or a scorer (outlier or adversarial) that scores a batch of
instances in one call. Classes that need no model can also be fitted at start from reference
data (``algorithm:`` in the configuration); the deep ones (VAE, AE, AdversarialAE,
ModelDistillation, classifier and learned-kernel drift) come saved with their model.
"""

from __future__ import annotations

import importlib
from enum import Enum
from typing import Any

import numpy as np


class Family(Enum):
    BATCH_DRIFT = "batch drift"
    ONLINE_DRIFT = "online drift"
    SCORER = "scorer"


#: Online drift detectors: one instance at a time, with state worth saving.
ONLINE_DRIFT = frozenset({"MMDDriftOnline", "LSDDDriftOnline", "CVMDriftOnline", "FETDriftOnline"})
BATCH_DRIFT_BUILDABLE = (
    "KSDrift",
    "CVMDrift",
    "ChiSquareDrift",
    "TabularDrift",
    "FETDrift",
    "MMDDrift",
    "LSDDDrift",
)
#: Scorers whose ``predict`` changes them (Mahalanobis updates its running mean and covariance).
STATEFUL_SCORERS = frozenset({"Mahalanobis"})

#: Fitted from reference data at start: class name → (module, family).
BUILDABLE: dict[str, tuple[str, Family]] = {
    **{name: ("alibi_detect.cd", Family.BATCH_DRIFT) for name in BATCH_DRIFT_BUILDABLE},
    **{name: ("alibi_detect.cd", Family.ONLINE_DRIFT) for name in ONLINE_DRIFT},
    "IForest": ("alibi_detect.od", Family.SCORER),
    "Mahalanobis": ("alibi_detect.od", Family.SCORER),
}

#: The package each kind of detector comes from; a saved detector must match its configured kind.
KIND_PACKAGES = {"drift": "alibi_detect.cd", "outlier": "alibi_detect.od", "adversarial": "alibi_detect.ad"}
#: The key of the per-instance flag in a scorer's ``predict`` data.
FLAG_KEYS = {"outlier": "is_outlier", "adversarial": "is_adversarial"}


class CatalogError(Exception):
    """A detector we cannot run as configured; the message says why."""


def family_of(detector: Any, kind: str) -> Family:
    """The family of a loaded detector, checked against the kind the configuration gives it."""
    name = type(detector).__name__
    module = type(detector).__module__
    if not module.startswith(KIND_PACKAGES[kind] + "."):
        raise CatalogError(f"{name} is not a {kind} detector (it comes from {module})")
    if kind != "drift":
        return Family.SCORER
    return Family.ONLINE_DRIFT if name in ONLINE_DRIFT else Family.BATCH_DRIFT


def is_stateful(detector: Any) -> bool:
    """Whether each model (and endpoint) needs its own copy of the detector."""
    name = type(detector).__name__
    return name in ONLINE_DRIFT or name in STATEFUL_SCORERS


def build(algorithm: str, kind: str, reference: np.ndarray[Any, Any], parameters: dict[str, Any]) -> Any:
    """Fit ``algorithm`` on the reference data with the configured parameters.

    Scorers take ``threshold_perc`` (default 99): without an explicit ``threshold`` it is set at
    that percentile of the reference data's scores.
    """
    if algorithm not in BUILDABLE:
        known = ", ".join(sorted(BUILDABLE))
        raise CatalogError(
            f"algorithm {algorithm!r} cannot be fitted from reference data here (known: {known}); "
            "save it with alibi_detect.saving.save_detector and give its uri"
        )
    module, family = BUILDABLE[algorithm]
    cls = getattr(importlib.import_module(module), algorithm)
    expected = KIND_PACKAGES[kind]
    if module != expected:
        raise CatalogError(f"{algorithm} is not a {kind} detector")
    reference = reference.astype(np.float32) if reference.dtype.kind in "fiub" else reference
    if family is not Family.SCORER:
        return cls(reference, **parameters)
    options = dict(parameters)
    percentile = float(options.pop("threshold_perc", 99.0))
    detector = cls(**options)
    if algorithm == "IForest":
        detector.fit(reference)
    if options.get("threshold") is None:
        detector.infer_threshold(reference, threshold_perc=percentile)
    return detector
