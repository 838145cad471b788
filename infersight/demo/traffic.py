"""HTTP CloudEvents exactly as the KServe InferenceService logger sends them, and feedback events.

Binary mode: the CloudEvent attributes are ``ce-`` headers, the body is the model's own payload
with the request's Content-Type. The request and its response carry the SAME ``ce-id``; the
``inferenceservicename``, ``namespace``, ``component`` and ``endpoint`` extensions name the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from infersight.demo.data import Array
from infersight.times import format_time

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
FEEDBACK = "io.infersight.feedback"


@dataclass(frozen=True)
class Event:
    """One HTTP POST: headers and body bytes."""

    headers: dict[str, str]
    body: bytes

    def to_json(self) -> bytes:
        """One line of a recording (``infersight replay`` reads these back)."""
        return orjson.dumps({"headers": self.headers, "body": self.body.decode()})


@dataclass(frozen=True)
class Model:
    namespace: str
    name: str
    protocol: str  # "v1" or "v2"


def _stamp(when: datetime) -> str:
    return format_time(when)


def kserve_headers(model: Model, request_id: str, kind: str, endpoint: str, when: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": request_id,
        "ce-source": f"http://localhost:9081/{model.name}-predictor",
        "ce-type": REQUEST if kind == "request" else RESPONSE,
        "ce-time": _stamp(when),
        "ce-inferenceservicename": model.name,
        "ce-namespace": model.namespace,
        "ce-component": "predictor",
        "ce-endpoint": endpoint,
    }


def request_body(model: Model, rows: Array) -> dict[str, Any]:
    """v1 ``instances``, or a v2 FP32 tensor named ``pixels``."""
    if model.protocol == "v1":
        return {"instances": [[round(float(v), 5) for v in row] for row in rows]}
    return {
        "inputs": [
            {
                "name": "pixels",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": [round(float(v), 5) for v in rows.reshape(-1)],
            }
        ]
    }


def response_body(model: Model, classes: Array) -> dict[str, Any]:
    """v1 ``predictions``, or a v2 INT64 tensor named ``digit``."""
    predictions = [int(c) for c in classes]
    if model.protocol == "v1":
        return {"predictions": predictions}
    return {
        "model_name": model.name,
        "outputs": [{"name": "digit", "shape": [len(predictions)], "datatype": "INT64", "data": predictions}],
    }


def inference(
    model: Model, request_id: str, endpoint: str, rows: Array, classes: Array, when: datetime
) -> tuple[Event, Event]:
    """The request and response events of one inference."""
    return (
        Event(
            kserve_headers(model, request_id, "request", endpoint, when),
            orjson.dumps(request_body(model, rows)),
        ),
        Event(
            kserve_headers(model, request_id, "response", endpoint, when),
            orjson.dumps(response_body(model, classes)),
        ),
    )


def feedback(model: Model, request_id: str, label: Any, when: datetime) -> Event:
    """Ground truth for one inference, as a labelling job would send it."""
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": f"feedback-{request_id}",
        "ce-source": "/infersight-demo/labelling",
        "ce-type": FEEDBACK,
        "ce-time": _stamp(when),
        "ce-inferenceservicename": model.name,
        "ce-namespace": model.namespace,
    }
    return Event(headers, orjson.dumps({"request_id": request_id, "label": label}))
