"""Records for the store tests, decoded from real KServe v1 and Open Inference Protocol v2 bodies."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from infersight.records import (
    FEEDBACK,
    KSERVE_REQUEST,
    KSERVE_RESPONSE,
    SELDON_FEEDBACK,
    Half,
    InferenceRecord,
    ModelRef,
    RawEvent,
    Score,
)
from infersight.streams.decode import decode_body

BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IRIS = ModelRef("models", "iris", "default", "predictor")
IRIS_CANARY = ModelRef("models", "iris", "canary", "predictor")
IRIS_TRANSFORMER = ModelRef("models", "iris", "default", "transformer")
DIGITS = ModelRef("vision", "digits", "default", "predictor")


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def kserve_event(
    event_type: str, request_id: str, body: dict[str, Any], model: ModelRef, at: datetime
) -> RawEvent:
    """What the KServe logger sends, as the ingest keeps it."""
    return RawEvent(
        attributes={
            "specversion": "1.0",
            "id": request_id,
            "source": "http://localhost:9081/",
            "type": event_type,
            "time": iso(at),
            "inferenceservicename": model.inferenceservice,
            "namespace": model.namespace,
            "endpoint": model.endpoint,
            "component": model.component,
            "datacontenttype": "application/json",
            "metadata": '{"User-Agent": ["curl/8.5.0"]}',
        },
        data=orjson.dumps(body),
    )


def half(event: RawEvent, received: datetime) -> Half:
    payload = decode_body(event.data, event.attributes.get("datacontenttype"), event.content_encoding)
    return Half(event=event, payload=payload, received_at=received.timestamp())


def v1_request(rows: list[list[float]]) -> dict[str, Any]:
    return {"instances": rows}


def v1_response(classes: list[int]) -> dict[str, Any]:
    return {"predictions": classes}


def v2_request(rows: list[list[float]]) -> dict[str, Any]:
    return {
        "id": "x",
        "inputs": [
            {"name": "sepal", "shape": [len(rows), 2], "datatype": "FP32", "data": [r[:2] for r in rows]},
            {"name": "petal_length", "shape": [len(rows)], "datatype": "FP64", "data": [r[2] for r in rows]},
            {
                "name": "petal_width",
                "shape": [len(rows), 1],
                "datatype": "FP64",
                "data": [r[3] for r in rows],
            },
        ],
    }


def v2_response(probabilities: list[list[float]]) -> dict[str, Any]:
    return {
        "model_name": "iris",
        "outputs": [
            {
                "name": "probabilities",
                "shape": [len(probabilities), len(probabilities[0])],
                "datatype": "FP32",
                "data": [v for row in probabilities for v in row],
            }
        ],
    }


def record(
    request_id: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None,
    *,
    model: ModelRef = IRIS,
    offset_s: float = 0.0,
    scores: tuple[Score, ...] = (),
) -> InferenceRecord:
    """A record decoded from the bodies; the response is logged 20 ms after the request."""
    at = BASE_TIME + timedelta(seconds=offset_s)
    later = at + timedelta(milliseconds=20)
    return InferenceRecord(
        request_id=request_id,
        model=model,
        request=half(
            kserve_event(KSERVE_REQUEST, request_id, request, model, at), at + timedelta(milliseconds=5)
        )
        if request is not None
        else None,
        response=half(kserve_event(KSERVE_RESPONSE, request_id, response, model, later), later)
        if response is not None
        else None,
        scores=scores,
    )


def outlier_score(value: float, threshold: float = 1.0, detector: str = "iforest") -> Score:
    return Score(
        detector=detector, kind="outlier", scores=(value,), flags=(value > threshold,), threshold=threshold
    )


def adversarial_score(value: float, threshold: float = 0.5, detector: str = "ae") -> Score:
    return Score(
        detector=detector,
        kind="adversarial",
        scores=(value,),
        flags=(value > threshold,),
        threshold=threshold,
    )


def feedback_event(
    event_id: str,
    request_id: str,
    label: Any,
    *,
    model: ModelRef | None = IRIS,
    at: datetime = BASE_TIME,
    component: str | None = None,
) -> RawEvent:
    """An ``io.infersight.feedback`` event: the request id and the true label in the body.

    It names the model's namespace and service, and a component only when ``component`` is given.
    """
    attributes = {
        "specversion": "1.0",
        "id": event_id,
        "source": "labeller",
        "type": FEEDBACK,
        "time": iso(at),
    }
    if model is not None:
        attributes |= {"namespace": model.namespace, "inferenceservicename": model.inferenceservice}
    if component is not None:
        attributes["component"] = component
    return RawEvent(attributes=attributes, data=orjson.dumps({"request_id": request_id, "label": label}))


def seldon_feedback_event(
    event_id: str, puid: str, truth: list[list[int]], at: datetime = BASE_TIME
) -> RawEvent:
    """Seldon's feedback: gzip body with request, response (naming the prediction's puid), reward, truth."""
    body = {
        "request": {"data": {"ndarray": [[5.1, 3.5, 1.4, 0.2]]}},
        "response": {"meta": {"puid": puid}, "data": {"ndarray": [[0]]}},
        "reward": 1.0,
        "truth": {"data": {"ndarray": truth}},
    }
    attributes = {
        "specversion": "1.0",
        "id": event_id,
        "source": "seldon",
        "type": SELDON_FEEDBACK,
        "time": iso(at),
        "requestid": event_id,
        "modelid": "classifier",
        "namespace": "models",
        "inferenceservicename": "iris",
    }
    return RawEvent(attributes=attributes, data=gzip.compress(orjson.dumps(body)), content_encoding="gzip")
