"""Fit the demo's detectors, save them with alibi-detect, and write the configuration naming them.

Wine gets a batch drift test (KSDrift), an online drift detector (LSDDDriftOnline, fitted by the
worker at start from a saved reference) and IForest; digits get OutlierVAE and AdversarialAE.
Saved detectors are kept in the demo folder and reused while their recipe is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infersight.demo.data import Array, Split, WineSource
from infersight.detectors.loading import use_legacy_keras

NAMESPACE = "infersight-demo"
WINE = "wine"
DIGITS = "digits"

#: The wine reference: what the model's validation traffic looked like, drawn once with a fixed seed.
REFERENCE_ROWS = 300
REFERENCE_SEED = 100

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Fitted:
    """Where each detector lies; what the configuration names."""

    ks: Path
    iforest: Path
    online_reference: Path
    vae: Path
    adversarial: Path


def _saved(folder: Path, fit: Callable[[], Any], say: Progress, what: str) -> Path:
    done = folder / ".complete"
    if done.exists():
        return folder
    say(f"fitting {what}")
    from alibi_detect.saving import save_detector

    save_detector(fit(), folder)
    done.touch()
    return folder


def _ks(reference: Array) -> Any:
    from alibi_detect.cd import KSDrift

    return KSDrift(reference, p_val=0.01)


def _iforest(reference: Array) -> Any:
    from alibi_detect.od import IForest

    detector = IForest(n_estimators=100)
    detector.fit(reference)
    detector.infer_threshold(reference, threshold_perc=99)
    return detector


def _vae(digits: Split, epochs: int) -> Any:
    import tf_keras as keras
    from alibi_detect.od import OutlierVAE

    latent = 8
    encoder = keras.Sequential(
        [keras.layers.InputLayer(input_shape=(64,)), keras.layers.Dense(32, activation="relu")]
    )
    decoder = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(latent,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    detector = OutlierVAE(encoder_net=encoder, decoder_net=decoder, latent_dim=latent, samples=3)
    detector.fit(digits.train_x, epochs=epochs, batch_size=128, verbose=False)
    detector.infer_threshold(digits.train_x, threshold_perc=98)
    return detector


def _adversarial(digits: Split, classifier: Any, epochs: int) -> Any:
    import tf_keras as keras
    from alibi_detect.ad import AdversarialAE

    encoder = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(64,)),
            keras.layers.Dense(48, activation="relu"),
            keras.layers.Dense(24),
        ]
    )
    decoder = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(24,)),
            keras.layers.Dense(48, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    detector = AdversarialAE(encoder_net=encoder, decoder_net=decoder, model=classifier)
    detector.fit(digits.train_x, epochs=epochs, batch_size=64, verbose=False)
    detector.infer_threshold(digits.train_x, threshold_perc=95)
    return detector


def fit_all(
    wine: WineSource, digits: Split, classifier: Any, cache: Path, epochs: int, say: Progress
) -> Fitted:
    """Every detector, from the cache when there."""
    use_legacy_keras()
    import tensorflow as tf

    tf.random.set_seed(0)
    rows, _ = wine.draw(np.random.default_rng(REFERENCE_SEED), REFERENCE_ROWS)
    reference = cache / "wine-reference.npy"
    np.save(reference, rows)
    return Fitted(
        ks=_saved(cache / "wine-ks", lambda: _ks(rows), say, "KSDrift on wine"),
        iforest=_saved(cache / "wine-iforest", lambda: _iforest(rows), say, "IForest on wine"),
        online_reference=reference,
        vae=_saved(cache / "digits-vae-20", lambda: _vae(digits, 20), say, "OutlierVAE on digits"),
        adversarial=_saved(
            cache / f"digits-adversarial-ae-{epochs}",
            lambda: _adversarial(digits, classifier, epochs),
            say,
            f"AdversarialAE on digits ({epochs} epochs)",
        ),
    )


def models_config(fitted: Fitted, window: int) -> list[dict[str, Any]]:
    """The ``models:`` section: what runs on which InferenceService."""
    sized = {"size": window}
    wine = {
        "namespace": NAMESPACE,
        "inferenceservice": WINE,
        "detectors": [
            # One window across default and canary: the phases are sized in whole windows.
            {"name": "ks-drift", "kind": "drift", "uri": fitted.ks.as_uri(), "window": sized,
             "split_endpoints": False},
            {"name": "online-drift", "kind": "drift", "algorithm": "LSDDDriftOnline",
             "reference": fitted.online_reference.as_uri(), "window": sized, "split_endpoints": False,
             "parameters": {"ert": 500, "window_size": 10, "n_bootstraps": 1000, "verbose": False}},
            {"name": "iforest", "kind": "outlier", "uri": fitted.iforest.as_uri(),
             "allow_unsafe_loading": True},
        ],
    }  # fmt: skip
    digits = {
        "namespace": NAMESPACE,
        "inferenceservice": DIGITS,
        "detectors": [
            {"name": "vae", "kind": "outlier", "uri": fitted.vae.as_uri(), "allow_unsafe_loading": True},
            {"name": "adversarial-ae", "kind": "adversarial", "uri": fitted.adversarial.as_uri(),
             "allow_unsafe_loading": True},
        ],
    }  # fmt: skip
    return [wine, digits]
