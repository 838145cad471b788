"""Data and models for detector tests: what ships with scikit-learn, and records built from it.

Records are made the way the worker makes them: KServe v1 bodies decoded by the stream
decoder, so the detectors see exactly what they see in production.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sklearn.datasets import load_breast_cancer, load_digits

from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE, Half, InferenceRecord, RawEvent
from infersight.streams.decode import decode_body

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NAMESPACE = "tests"


def breast_cancer(seed: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Standardised breast-cancer features, shuffled and split: (reference, held-out)."""
    x = load_breast_cancer().data.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    x = x[np.random.default_rng(seed).permutation(len(x))]
    return x[:300], x[300:]


def digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The 8x8 digits as 64 features in [0, 1], and their labels."""
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def half(
    event_type: str,
    request_id: str,
    model: str,
    body: dict[str, Any],
    endpoint: str = "default",
    component: str | None = None,
    source: str = "http://localhost:9081/",
) -> Half:
    raw = orjson.dumps(body)
    attributes = {
        "specversion": "1.0",
        "id": request_id,
        "source": source,
        "type": event_type,
        "inferenceservicename": model,
        "namespace": NAMESPACE,
        "endpoint": endpoint,
        "datacontenttype": "application/json",
    }
    if component is not None:
        attributes["component"] = component
    event = RawEvent(attributes=attributes, data=raw)
    return Half(event=event, payload=decode_body(raw, "application/json", None), received_at=time.time())


def record(
    model: str,
    instances: np.ndarray[Any, Any],
    predictions: list[Any] | None = None,
    endpoint: str = "default",
    component: str | None = None,
    source: str = "http://localhost:9081/",
) -> InferenceRecord:
    """One inference of ``instances`` (rows), with a response when ``predictions`` are given;
    ``source`` is the pod that served it (it names the revision)."""
    request_id = uuid.uuid4().hex
    request = half(
        KSERVE_REQUEST, request_id, model, {"instances": instances.tolist()}, endpoint, component, source
    )
    response = (
        half(KSERVE_RESPONSE, request_id, model, {"predictions": predictions}, endpoint, component, source)
        if predictions is not None
        else None
    )
    return InferenceRecord(
        request_id=request_id, model=request.event.model, request=request, response=response
    )


def records(
    model: str,
    rows: np.ndarray[Any, Any],
    endpoint: str = "default",
    component: str | None = None,
    source: str = "http://localhost:9081/",
) -> list[InferenceRecord]:
    """One single-instance inference per row; ``component`` sets the KServe component extension."""
    return [
        record(model, row[None, :], endpoint=endpoint, component=component, source=source) for row in rows
    ]


def save_ks_and_iforest(folder: Path) -> tuple[Path, Path]:
    """A KSDrift and an IForest fitted on the breast-cancer reference, saved as a user ships them."""
    from alibi_detect.cd import KSDrift
    from alibi_detect.od import IForest
    from alibi_detect.saving import save_detector

    reference, _ = breast_cancer()
    save_detector(KSDrift(reference, p_val=0.01), folder / "ks")
    iforest = IForest(n_estimators=100)
    iforest.fit(reference)
    iforest.infer_threshold(reference, threshold_perc=99.5)
    save_detector(iforest, folder / "iforest")
    return folder / "ks", folder / "iforest"
