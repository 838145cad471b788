"""The instances a detector sees in one inference record.

A request or response tensor's first axis counts instances; the rest is flattened into features
(1-D tensors are one value per instance, like a classifier's predictions). With ``on: [request,
response]`` the two sides are joined feature by feature, so drift can be tested on inputs and
predictions together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infersight.config import DetectorConfig
from infersight.records import REQUEST, Half, InferenceRecord
from infersight.times import to_unix


class FeatureError(Exception):
    """A record whose payload does not give the instances a detector needs."""


@dataclass(frozen=True, slots=True)
class Instances:
    """A record's instances as rows of features, and the feature names."""

    rows: np.ndarray[Any, Any]
    names: tuple[str, ...]


def _side(record: InferenceRecord, side: str) -> Half:
    half = record.request if side == REQUEST else record.response
    if half is None:
        raise FeatureError(f"the record has no {side}")
    return half


def _tensor_rows(half: Half, tensor_name: str | None) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    tensors = half.payload.tensors
    if not tensors:
        raise FeatureError(f"the {half.payload.protocol} payload has no tensors")
    if tensor_name is None:
        tensor = tensors[0]
    else:
        try:
            tensor = half.payload.tensor(tensor_name)
        except KeyError:
            raise FeatureError(f"no tensor named {tensor_name!r}") from None
    array = tensor.array
    if array.dtype.kind not in "biuf":
        raise FeatureError(f"tensor {tensor.name!r} holds {array.dtype} values, not numbers")
    if array.ndim == 0:
        array = array.reshape(1, 1)
    rows = array.reshape(array.shape[0], -1)
    if tensor.columns is not None and len(tensor.columns) == rows.shape[1]:
        names = tensor.columns
    else:
        names = tuple(str(index) for index in range(rows.shape[1]))
    return rows, names


def instances(record: InferenceRecord, config: DetectorConfig) -> Instances:
    """The rows the detector scores for ``record``, as float32."""
    parts = [_tensor_rows(_side(record, side), config.tensor) for side in config.on]
    if len(parts) == 1:
        rows, names = parts[0]
    else:
        counts = {rows.shape[0] for rows, _ in parts}
        if len(counts) > 1:
            raise FeatureError(f"request and response hold different numbers of instances ({sorted(counts)})")
        rows = np.hstack([rows for rows, _ in parts])
        names = tuple(
            f"{side}.{name}"
            for side, (_, side_names) in zip(config.on, parts, strict=True)
            for name in side_names
        )
    return Instances(rows=rows.astype(np.float32, copy=False), names=names)


def event_time(record: InferenceRecord) -> float:
    """When the inference happened: the request's ``time`` attribute, else when a half was received."""
    half = record.request or record.response
    assert half is not None
    text = half.event.attributes.get("time")
    if text:
        try:
            return to_unix(text)
        except ValueError:
            pass
    return half.received_at
