"""Inference records as JSON, the value of the records topic that shows what the workers produce."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from infersight.records import Half, InferenceRecord, Score, Tensor


def _values(array: np.ndarray[Any, Any]) -> Any:
    if array.dtype == object:
        flat = [
            base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()
        ]
        return np.asarray(flat, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def _tensor(tensor: Tensor) -> dict[str, Any]:
    return {
        "name": tensor.name,
        "dtype": str(tensor.array.dtype),
        "shape": list(tensor.array.shape),
        "columns": list(tensor.columns) if tensor.columns is not None else None,
        "data": _values(tensor.array),
    }


def _half(half: Half | None) -> dict[str, Any] | None:
    if half is None:
        return None
    return {
        "attributes": half.event.attributes,
        "received_at": half.received_at,
        "protocol": half.payload.protocol,
        "tensors": [_tensor(tensor) for tensor in half.payload.tensors],
    }


def _score(score: Score) -> dict[str, Any]:
    out: dict[str, Any] = {
        "detector": score.detector,
        "kind": score.kind,
        "scores": list(score.scores),
        "flags": list(score.flags),
        "threshold": score.threshold,
    }
    if score.feature_scores is not None:
        out["feature_scores"] = [list(row) for row in score.feature_scores]
    return out


def record_to_json(record: InferenceRecord) -> bytes:
    return orjson.dumps(
        {
            "request_id": record.request_id,
            "namespace": record.model.namespace,
            "inferenceservice": record.model.inferenceservice,
            "component": record.model.component,
            "endpoint": record.model.endpoint,
            "mode": record.mode,
            "request": _half(record.request),
            "response": _half(record.response),
            "scores": [_score(score) for score in record.scores],
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
