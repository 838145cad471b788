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
from infersight.featurenames import INPUT, OUTPUT, feature_names
from infersight.records import REQUEST, Half, InferenceRecord
from infersight.times import to_unix

#: Feature names by what decides them; a model's records mostly share one layout.
_NAMES: dict[tuple[Any, ...], tuple[str, ...]] = {}


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


def _tensor_rows(
    half: Half, tensor_name: str | None, side: str
) -> tuple[np.ndarray[Any, Any], tuple[str, ...]]:
    tensors = half.payload.tensors
    if not tensors:
        raise FeatureError(f"the {half.payload.protocol} payload has no tensors")
    position = 0
    if tensor_name is not None:
        named = [index for index, tensor in enumerate(tensors) if tensor.name == tensor_name]
        if not named:
            raise FeatureError(f"no tensor named {tensor_name!r}")
        position = named[0]
    tensor = tensors[position]
    array = tensor.array
    if array.dtype.kind not in "biuf":
        raise FeatureError(f"tensor {tensor.name!r} holds {array.dtype} values, not numbers")
    if array.ndim == 0:
        array = array.reshape(1, 1)
    rows = array.reshape(array.shape[0], -1)
    key = (tensor.name, tensor.columns, rows.shape[1], side, position)
    names = _NAMES.get(key)
    if names is None:
        if len(_NAMES) > 4096:
            _NAMES.clear()
        names = _NAMES[key] = tuple(feature_names(tensor.name, tensor.columns, rows.shape[1], side, position))
    return rows, names


def instances(record: InferenceRecord, config: DetectorConfig) -> Instances:
    """The rows the detector scores for ``record``, as float32, its features named as exports name them."""
    parts = [
        _tensor_rows(_side(record, side), config.tensor, INPUT if side == REQUEST else OUTPUT)
        for side in config.on
    ]
    if len(parts) == 1:
        rows, names = parts[0]
    else:
        counts = {rows.shape[0] for rows, _ in parts}
        if len(counts) > 1:
            raise FeatureError(f"request and response hold different numbers of instances ({sorted(counts)})")
        rows = np.hstack([rows for rows, _ in parts])
        names = tuple(name for _, side_names in parts for name in side_names)
        if len(set(names)) < len(names):  # columns named alike on both sides: the side tells them apart
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
