"""The traffic plan: which inferences each phase sends, and what was injected into which.

Wine phases are whole drift windows long, so a window's verdict belongs to one phase. What was
injected is recorded per request id; the results are then read back from the pipeline and
matched to this plan by request id, never computed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infersight.demo.data import Array, Split, WineSource
from infersight.demo.detectors import DIGITS, NAMESPACE, WINE
from infersight.demo.models import fgsm, predict_classes
from infersight.demo.traffic import Model

WINE_MODEL = Model(NAMESPACE, WINE, "v1")
DIGITS_MODEL = Model(NAMESPACE, DIGITS, "v2")
#: Covariate drift: these wine features (alcohol, flavanoids, colour intensity, proline) move up.
DRIFTED_FEATURES = (0, 6, 9, 12)
DRIFT_SHIFT = 1.5
ATTACK_EPSILON = 0.15
CANARY_SHARE = 0.2
NAMES = ("normal", "drift", "outliers", "adversarial")


@dataclass(frozen=True)
class Sizes:
    """How much traffic: wine in whole drift windows, digits in requests per phase."""

    window: int = 100
    normal_windows: int = 2
    drift_windows: int = 2
    outlier_windows: int = 1
    digits: int = 100
    wine_outlier_share: float = 0.1
    digits_outlier_share: float = 0.2
    attacked_share: float = 0.5


@dataclass(frozen=True)
class Planned:
    """One inference to send: one instance, its true label, and what (if anything) was injected."""

    request_id: str
    model: Model
    endpoint: str
    phase: str
    injected: str | None
    row: Array
    label: int
    prediction: int


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    inferences: list[Planned]


def _far_away(rows: Array, rng: np.random.Generator) -> Array:
    """Rows with six of the features pushed six standard deviations out (IForest misses most rows
    with only three: a tree rarely splits on one of those three early)."""
    out = rows.copy()
    for row in out:
        columns = rng.choice(rows.shape[1], 6, replace=False)
        row[columns] = rng.choice([-6.0, 6.0], 6)
    return out


class Planner:
    """Builds the phases from the data and the served models."""

    def __init__(
        self, run_id: str, sizes: Sizes, wine: WineSource, digits: Split, wine_model: Any, digits_model: Any
    ) -> None:
        self.run_id = run_id
        self.sizes = sizes
        self.wine = wine
        self.digits = digits
        self.models = {WINE: wine_model, DIGITS: digits_model}
        self.rng = np.random.default_rng(0)
        self.count = 0
        self.digits_cursor = 0

    def _planned(
        self, model: Model, phase: str, rows: Array, labels: Array, injected: list[str | None]
    ) -> list[Planned]:
        predictions = predict_classes(self.models[model.name], rows)
        out = []
        for row, label, prediction, what in zip(rows, labels, predictions, injected, strict=True):
            self.count += 1
            endpoint = "canary" if self.rng.random() < CANARY_SHARE else "default"
            request_id = f"{self.run_id}-{self.count:05d}"
            out.append(Planned(request_id, model, endpoint, phase, what, row, int(label), int(prediction)))
        return out

    def _wine(self, phase: str, windows: int, injected: str | None, share: float = 1.0) -> list[Planned]:
        count = windows * self.sizes.window
        rows, labels = self.wine.draw(self.rng, count)
        marks: list[str | None] = [None] * count
        if injected == "drift":
            rows[:, list(DRIFTED_FEATURES)] += DRIFT_SHIFT
            marks = ["drift"] * count
        elif injected == "outlier":
            chosen = self.rng.choice(count, max(1, round(share * count)), replace=False)
            rows[chosen] = _far_away(rows[chosen], self.rng)
            for index in chosen:
                marks[index] = "outlier"
        return self._planned(WINE_MODEL, phase, rows, labels, marks)

    def _digits(self, phase: str, injected: str | None, share: float = 0.0) -> list[Planned]:
        count = self.sizes.digits
        live_x, live_y = self.digits.live_x, self.digits.live_y
        indices = (np.arange(count) + self.digits_cursor) % len(live_x)
        self.digits_cursor += count
        rows, labels = live_x[indices].copy(), live_y[indices].copy()
        marks: list[str | None] = [None] * count
        if injected is not None:
            chosen = np.sort(self.rng.choice(count, max(1, round(share * count)), replace=False))
            if injected == "outlier":
                rows[chosen] = self.rng.uniform(0.0, 1.0, (len(chosen), rows.shape[1])).astype(np.float32)
            else:
                rows[chosen] = fgsm(self.models[DIGITS], rows[chosen], labels[chosen], ATTACK_EPSILON)
            for index in chosen:
                marks[index] = injected
        return self._planned(DIGITS_MODEL, phase, rows, labels, marks)

    def phases(self) -> list[Phase]:
        s = self.sizes
        normal = self._wine("normal", s.normal_windows, None) + self._digits("normal", None)
        drift = self._wine("drift", s.drift_windows, "drift") + self._digits("drift", None)
        outliers = self._wine("outliers", s.outlier_windows, "outlier", s.wine_outlier_share) + self._digits(
            "outliers", "outlier", s.digits_outlier_share
        )
        adversarial = self._digits("adversarial", "adversarial", s.attacked_share)
        shift = f"+{DRIFT_SHIFT} sd on {len(DRIFTED_FEATURES)} wine features"
        return [
            Phase("normal", "wine and digits as trained on", normal),
            Phase("drift", f"covariate drift: {shift}", drift),
            Phase("outliers", "far-away wine rows, noise images", outliers),
            Phase("adversarial", f"FGSM attacks (eps {ATTACK_EPSILON}) on digits", adversarial),
        ]
