"""Deep detectors on the digits images: trained here, saved with ``save_detector``, loaded by URI.

The adversarial case crafts its attacks in the test: a fast-gradient-sign attack on a small
classifier, which the AdversarialAE and ModelDistillation detectors must flag far more often
than clean digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from infersight.config import ModelConfig
from infersight.detectors.loading import load_all
from infersight.detectors.metrics import DetectorMetrics
from infersight.detectors.runner import DetectorRunner
from infersight.records import InferenceRecord
from tests.detectors_data import NAMESPACE, digits, record

EPOCHS = 50
ATTACK_EPSILON = 0.15


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Detectors draw random numbers (permutation tests, classifier training, online windows):
    seeded, each test gives the same answer every run, whatever ran before it."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)


def saved_runner(tmp_path: Path, name: str, kind: str, detector: Any) -> DetectorRunner:
    from alibi_detect.saving import save_detector

    folder = tmp_path / name
    save_detector(detector, folder)
    config = ModelConfig(
        namespace=NAMESPACE,
        inferenceservice="digits",
        detectors=[{"name": name, "kind": kind, "uri": f"file://{folder}", "allow_unsafe_loading": True}],
    )
    return DetectorRunner(load_all([config], tmp_path / "cache"), DetectorMetrics(CollectorRegistry(), 10))


def flagged_share(runner: DetectorRunner, rows: np.ndarray[Any, Any], kind: str) -> float:
    # Ten instances per request: a batch request is scored per instance, flagged per record.
    batch: list[InferenceRecord] = [
        record("digits", rows[start : start + 10]) for start in range(0, len(rows), 10)
    ]
    scored, _ = runner.process(batch)
    flags = [flag for r in scored for score in r.scores if score.kind == kind for flag in score.flags]
    assert len(flags) == len(rows)
    return float(np.mean(flags))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray[Any, Any]]:
    x, y = digits()
    order = np.random.default_rng(1).permutation(len(x))
    x, y = x[order], y[order]
    return {"train_x": x[:1400], "train_y": y[:1400], "test_x": x[1400:1700], "test_y": y[1400:1700]}


@pytest.fixture(scope="module")
def classifier(data: dict[str, np.ndarray[Any, Any]]) -> Any:
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(0)
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data["train_x"], data["train_y"], epochs=30, batch_size=64, verbose=0)
    return model


def fgsm(model: Any, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The fast gradient sign attack: one step up the loss, clipped to valid pixels."""
    import tensorflow as tf

    images = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.keras.losses.sparse_categorical_crossentropy(y, model(images))
    step = ATTACK_EPSILON * tf.sign(tape.gradient(loss, images))
    return np.clip((images + step).numpy(), 0.0, 1.0).astype(np.float32)


def test_the_attack_fools_the_classifier(classifier: Any, data: dict[str, np.ndarray[Any, Any]]) -> None:
    clean = np.mean(classifier.predict(data["test_x"], verbose=0).argmax(axis=1) == data["test_y"])
    attacked_x = fgsm(classifier, data["test_x"], data["test_y"])
    attacked = np.mean(classifier.predict(attacked_x, verbose=0).argmax(axis=1) == data["test_y"])
    assert clean > 0.9
    assert attacked < 0.5


def test_adversarial_ae_flags_attacked_digits(
    tmp_path: Path, classifier: Any, data: dict[str, np.ndarray[Any, Any]]
) -> None:
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
    detector.fit(data["train_x"], epochs=EPOCHS, batch_size=64, verbose=False)
    detector.infer_threshold(data["train_x"], threshold_perc=95)
    runner = saved_runner(tmp_path, "adversarial-ae", "adversarial", detector)

    clean = flagged_share(runner, data["test_x"], "adversarial")
    attacked = flagged_share(runner, fgsm(classifier, data["test_x"], data["test_y"]), "adversarial")
    print(f"AdversarialAE flagged {clean:.1%} of clean digits, {attacked:.1%} of attacked ones")
    assert clean < 0.25
    assert attacked > 0.6
    assert attacked > 3 * clean


def test_model_distillation_flags_attacked_digits(
    tmp_path: Path, classifier: Any, data: dict[str, np.ndarray[Any, Any]]
) -> None:
    import tf_keras as keras
    from alibi_detect.ad import ModelDistillation

    distilled = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    detector = ModelDistillation(distilled_model=distilled, model=classifier)
    detector.fit(data["train_x"], epochs=EPOCHS, batch_size=64, verbose=False)
    detector.infer_threshold(data["train_x"], threshold_perc=95)
    runner = saved_runner(tmp_path, "distillation", "adversarial", detector)

    clean = flagged_share(runner, data["test_x"], "adversarial")
    attacked = flagged_share(runner, fgsm(classifier, data["test_x"], data["test_y"]), "adversarial")
    print(f"ModelDistillation flagged {clean:.1%} of clean digits, {attacked:.1%} of attacked ones")
    assert clean < 0.25
    assert attacked > 3 * clean


@pytest.mark.parametrize("algorithm", ["OutlierVAE", "OutlierAE"])
def test_autoencoder_outliers_flag_noise_not_digits(
    tmp_path: Path, algorithm: str, data: dict[str, np.ndarray[Any, Any]]
) -> None:
    import tf_keras as keras
    from alibi_detect.od import OutlierAE, OutlierVAE

    latent = 8
    encoder = keras.Sequential(
        [keras.layers.InputLayer(input_shape=(64,)), keras.layers.Dense(32, activation="relu")]
    )
    if algorithm == "OutlierAE":
        encoder.add(keras.layers.Dense(latent))
    decoder = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(latent,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(64, activation="sigmoid"),
        ]
    )
    if algorithm == "OutlierVAE":
        detector: Any = OutlierVAE(encoder_net=encoder, decoder_net=decoder, latent_dim=latent, samples=3)
    else:
        detector = OutlierAE(encoder_net=encoder, decoder_net=decoder)
    detector.fit(data["train_x"], epochs=20, batch_size=128, verbose=False)
    detector.infer_threshold(data["train_x"], threshold_perc=95)
    runner = saved_runner(tmp_path, algorithm.lower(), "outlier", detector)

    noise = np.random.default_rng(2).uniform(0, 1, size=(50, 64)).astype(np.float32)
    assert flagged_share(runner, data["test_x"][:200], "outlier") < 0.15
    assert flagged_share(runner, noise, "outlier") == 1.0
    # A flagged record keeps its score per pixel (what the UI draws as a heatmap): the instance
    # score is their mean; records not flagged keep none.
    (flagged, clean), _ = runner.process([record("digits", noise[:10]), record("digits", data["test_x"][:1])])
    score = next(s for s in flagged.scores if s.kind == "outlier")
    assert score.feature_scores is not None and len(score.feature_scores) == 10
    for per_pixel, instance in zip(score.feature_scores, score.scores, strict=True):
        assert len(per_pixel) == 64 and abs(float(np.mean(per_pixel)) - instance) <= 1e-3 * abs(instance)
    unflagged = next(s for s in clean.scores if s.kind == "outlier")
    assert unflagged.flagged or unflagged.feature_scores is None
