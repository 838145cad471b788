"""The demo's data: wine (tabular) and digits (8x8 images), both shipped with scikit-learn.

Each is split once, with a fixed seed, into what the model and detectors learn from and what the
traffic is drawn from, so detectors are never shown the rows they later score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
WINE_FEATURES = 13


@dataclass(frozen=True)
class Split:
    train_x: Array
    train_y: Array
    live_x: Array
    live_y: Array


@dataclass(frozen=True)
class WineSource:
    """Wine as a population: one Gaussian per cultivar, fitted on the 178 standardised rows.

    178 rows are too few to draw hundreds of requests from without repeating them, and repeated
    rows look like drift to a test; fresh draws from the fitted population do not.
    """

    means: Array
    covariances: Array
    train_x: Array
    train_y: Array

    def draw(self, rng: np.random.Generator, count: int) -> tuple[Array, Array]:
        """``count`` fresh rows and their cultivar."""
        classes = rng.integers(0, len(self.means), count)
        rows = np.empty((count, WINE_FEATURES), dtype=np.float32)
        for label in range(len(self.means)):
            chosen = classes == label
            rows[chosen] = rng.multivariate_normal(self.means[label], self.covariances[label], chosen.sum())
        return rows, classes.astype(np.int64)


def wine() -> WineSource:
    """Wine, standardised as the client's feature pipeline would send it."""
    from sklearn.datasets import load_wine

    data = load_wine()
    x = data.data.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = data.target.astype(np.int64)
    labels = range(int(y.max()) + 1)
    means = np.stack([x[y == label].mean(axis=0) for label in labels])
    covariances = np.stack([np.cov(x[y == label].T) for label in labels])
    return WineSource(means, covariances, x, y)


def digits(seed: int = 1) -> Split:
    """The digits as 64 pixels in [0, 1]; two thirds to fit, a third live."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], data.target[order].astype(np.int64)
    cut = 1200
    return Split(x[:cut], y[:cut], x[cut:], y[cut:])
