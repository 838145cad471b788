"""Decoded tensors as stored JSON, and the per-instance columns the export makes of them.

The writer stores each side's column names and kinds (``input_schema``) with the same rules the
export uses to split values, so that an export knows its columns from a ``SELECT DISTINCT``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import orjson

from infersight.featurenames import feature_names
from infersight.records import Payload, Tensor
from infersight.sinks.store.types import json_bytes, json_column_text

BOOL: Final = "bool"
INT: Final = "int"
FLOAT: Final = "float"
STRING: Final = "string"


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value).decode()


def _plain(dtype: np.dtype[Any]) -> bool:
    """Whether :func:`_values` of an array of ``dtype`` is its ``tolist()``."""
    return dtype.kind != "O" and not (dtype.kind == "f" and dtype.itemsize < 8)


def _values(array: np.ndarray[Any, Any]) -> Any:
    if array.dtype.kind == "O":
        flat = [_text(v) if isinstance(v, bytes) else v for v in array.reshape(-1).tolist()]
        return np.asarray(flat, dtype=object).reshape(array.shape).tolist()
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        # The shortest decimal that reads back as the same FP32/FP16 value (0.1, not 0.10000000149011612).
        # orjson takes C-contiguous arrays of one dimension or more: a scalar goes as a one-value list.
        contiguous = np.ascontiguousarray(array.reshape(-1) if array.ndim == 0 else array)
        values = orjson.loads(orjson.dumps(contiguous, option=orjson.OPT_SERIALIZE_NUMPY))
        return values[0] if array.ndim == 0 else values
    return array.tolist()


def kind_of_dtype(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "b":
        return BOOL
    if dtype.kind in "iu":
        return INT
    if dtype.kind == "f":
        return FLOAT
    return STRING


def tensor_json(tensor: Tensor) -> dict[str, Any]:
    """A tensor as JSON: bytes as UTF-8 text (or ``base64:...`` when not text), NaN as null."""
    return {
        "name": tensor.name,
        "kind": kind_of_dtype(tensor.array.dtype),
        "shape": list(tensor.array.shape),
        "columns": list(tensor.columns) if tensor.columns is not None else None,
        "data": _values(tensor.array),
    }


def payload_json(payload: Payload) -> list[dict[str, Any]]:
    return [tensor_json(tensor) for tensor in payload.tensors]


def instance_count(tensors: Sequence[dict[str, Any]]) -> int:
    """Instances in a body: the first dimension of its first tensor (a 0-d tensor is one instance)."""
    if not tensors or not tensors[0]["shape"]:
        return 1
    return max(int(tensors[0]["shape"][0]), 0)


def _width(tensor: dict[str, Any], instances: int) -> int:
    """Values per instance: the tensor split along its first axis, or whole when it does not fit."""
    shape = tensor["shape"]
    size = int(math.prod(shape))
    if shape and instances and shape[0] == instances:
        return size // instances
    return size


def _names(tensor: dict[str, Any], width: int, side: str, position: int) -> list[str]:
    return feature_names(str(tensor["name"]), tensor.get("columns"), width, side, position)


def columns(tensors: Sequence[dict[str, Any]], instances: int, side: str) -> list[tuple[str, str]]:
    """``(column, kind)`` per feature: v2 tensor names or ``data.names``, else ``input_0``, ``input_1``..."""
    named: list[tuple[str, str]] = []
    for position, tensor in enumerate(tensors):
        width = _width(tensor, instances)
        named.extend((name, tensor["kind"]) for name in _names(tensor, width, side, position))
    return named


def rows(tensors: Sequence[dict[str, Any]], instances: int) -> list[list[Any]]:
    """One flat list of values per instance, in the order of :func:`columns`."""
    out: list[list[Any]] = [[] for _ in range(max(instances, 1))]
    for tensor in tensors:
        width = _width(tensor, instances)
        flat = _flatten(tensor["data"])
        if len(flat) == width * len(out):
            for i, row in enumerate(out):
                row.extend(flat[i * width : (i + 1) * width])
        else:  # a tensor not split by instance (a 0-d value, a shared parameter): every row gets it
            for row in out:
                row.extend(flat)
    return out


def detector_rows(stored: Sequence[dict[str, Any]] | None, name: str | None) -> np.ndarray[Any, Any] | None:
    """A side's rows as a detector reads them from the live payload: the first tensor, or the one
    named, its first axis the instances and the rest flattened; None when it holds no numbers."""
    found = [t for t in stored or [] if name is None or t.get("name") == name][:1]
    if not found or found[0].get("kind") not in (FLOAT, INT, BOOL):
        return None
    array = np.asarray(found[0]["data"], dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    return array.reshape(array.shape[0], -1)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    return [value for item in data for value in _flatten(item)]


def merge_kinds(first: str, second: str) -> str:
    """The kind a column needs to hold values of both kinds."""
    if first == second:
        return first
    if STRING in (first, second):
        return STRING
    if FLOAT in (first, second):
        return FLOAT
    return INT


class _Layout(NamedTuple):
    """What a payload's tensors' names, dtypes, shapes and columns decide of its stored JSON."""

    #: Each tensor's :func:`tensor_json` up to its data: ``{"name":...,"columns":...,"data":``.
    heads: tuple[bytes, ...]
    #: :func:`columns` as JSON text, as the ``input_schema`` / ``output_schema`` column holds it.
    schema: str
    instances: int
    #: The first tensor's ``shape`` and ``kind`` as :func:`tensor_json` gives them; None without tensors.
    first: tuple[list[int], str] | None
    #: Whether each tensor's data is its array's ``tolist()`` (:func:`_values` does no more).
    plain: tuple[bool, ...]


#: Layouts seen, by what decides them; a model's bodies mostly share one, so this stays small.
_LAYOUTS: dict[tuple[Any, ...], _Layout] = {}
_LAYOUTS_KEPT = 4096


def _new_layout(payload: Payload, side: str) -> _Layout:
    described: list[dict[str, Any]] = [
        {
            "name": tensor.name,
            "kind": kind_of_dtype(tensor.array.dtype),
            "shape": list(tensor.array.shape),
            "columns": list(tensor.columns) if tensor.columns is not None else None,
        }
        for tensor in payload.tensors
    ]
    instances = instance_count(described)
    return _Layout(
        heads=tuple(orjson.dumps(tensor)[:-1] + b',"data":' for tensor in described),
        schema=orjson.dumps(columns(described, instances, side)).decode(),
        instances=instances,
        first=(described[0]["shape"], described[0]["kind"]) if described else None,
        plain=tuple(_plain(tensor.array.dtype) for tensor in payload.tensors),
    )


def _layout(payload: Payload, side: str) -> _Layout:
    found = payload.tensors
    if len(found) == 1:  # keyed as payload_text looks it up
        only = found[0]
        key: tuple[Any, ...] = (side, only.name, only.array.dtype, only.array.shape, only.columns)
    else:
        key = (side, len(found), *[(t.name, t.array.dtype, t.array.shape, t.columns) for t in found])
    try:
        layout = _LAYOUTS.get(key)
    except TypeError:  # a name or column that cannot be hashed: nothing to keep
        return _new_layout(payload, side)
    if layout is None:
        if len(_LAYOUTS) >= _LAYOUTS_KEPT:
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = _new_layout(payload, side)
    return layout


def payload_text(payload: Payload, side: str) -> tuple[str, str, int, dict[str, Any] | None]:
    """:func:`payload_json` as the JSON text its column takes, without building it first.

    With the side's schema text (``input`` or ``output``), its :func:`instance_count`, and, for
    the output side, its first tensor's ``shape``, ``kind`` and ``data`` (what a prediction is
    read from; None without tensors).
    """
    found = payload.tensors
    if len(found) == 1:  # the common case, looked up without a list
        only = found[0]
        array = only.array
        try:
            layout = _LAYOUTS[side, only.name, array.dtype, array.shape, only.columns]
        except (KeyError, TypeError):
            layout = _layout(payload, side)
        first_data = array.tolist() if layout.plain[0] else _values(array)
        try:
            data = b"[" + layout.heads[0] + orjson.dumps(first_data) + b"}]"
        except orjson.JSONEncodeError:
            data = b"[" + layout.heads[0] + json_bytes(first_data) + b"}]"
    else:
        layout = _layout(payload, side)
        if layout.first is None:
            return "[]", layout.schema, layout.instances, None
        data_of = [_values(tensor.array) for tensor in found]
        parts = [head + json_bytes(values) + b"}" for head, values in zip(layout.heads, data_of, strict=True)]
        data = b"[" + b",".join(parts) + b"]"
        first_data = data_of[0]
    text = data.decode()
    if "\\u0000" in text:
        text = json_column_text(data)
    if side != "output":
        return text, layout.schema, layout.instances, None
    shape, kind = layout.first or ((), "")
    return text, layout.schema, layout.instances, {"shape": shape, "kind": kind, "data": first_data}
