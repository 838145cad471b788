"""The two served models, trained once and cached in the demo folder.

``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is imported: alibi-detect 0.13 builds its
detectors with Keras 2 (``tf_keras``), and the classifier must be one of those models.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from infersight.demo.data import Array, Split, WineSource
from infersight.detectors.loading import use_legacy_keras


def wine_classifier(split: WineSource, cache: Path) -> Any:
    """A logistic regression on the real wine rows (a pickle in ``cache``, written and read by the demo)."""
    path = cache / "wine-classifier.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())  # noqa: S301 - written by this demo, in its folder
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000).fit(split.train_x, split.train_y)
    path.write_bytes(pickle.dumps(model))
    return model


def digits_classifier(split: Split, cache: Path, epochs: int) -> Any:
    """A small dense network on the 64 pixels, softmax over the ten digits."""
    use_legacy_keras()
    import tensorflow as tf
    import tf_keras as keras

    path = cache / f"digits-classifier-{epochs}.h5"
    if path.exists():
        return keras.models.load_model(path)
    tf.random.set_seed(0)
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(split.train_x, split.train_y, epochs=epochs, batch_size=64, verbose=0)
    model.save(path)
    return model


def predict_classes(model: Any, x: Array) -> Array:
    """Predicted class per row, for either model."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict(x), dtype=np.int64)
    return np.asarray(model.predict(x, verbose=0).argmax(axis=1), dtype=np.int64)


def fgsm(model: Any, x: Array, y: Array, epsilon: float) -> Array:
    """The fast gradient sign attack: one step up the loss, clipped to valid pixels."""
    import tensorflow as tf

    images = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.keras.losses.sparse_categorical_crossentropy(y, model(images))
    step = epsilon * tf.sign(tape.gradient(loss, images))
    attacked: Array = np.clip((images + step).numpy(), 0.0, 1.0).astype(np.float32)
    return attacked
