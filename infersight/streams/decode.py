"""Decode logged request and response bodies into named arrays.

KServe and Seldon loggers send the model's own request or response as the event body, so the
body's shape says which protocol it speaks: Open Inference Protocol v2 (typed tensors under
``inputs`` or ``outputs``), KServe / TF-Serving v1 (``instances``, ``inputs``, ``predictions``,
``outputs``) or Seldon (``data``, ``jsonData``, ``strData``, ``binData``). JSON of any other
shape is ``raw``: stored and counted upstream, never an error.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import zlib
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from infersight.eventformat import GZIP_MAGIC, InvalidEvent, is_json, load_json, media_type
from infersight.records import Payload, RawEvent, Tensor

Array = NDArray[Any]

_V2_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    # numpy has no bfloat16; float32 holds every bfloat16 value exactly.
    "BF16": np.dtype(np.float32),
    "BYTES": np.dtype(object),
}

_V1_KEYS: Final = ("instances", "inputs", "predictions", "outputs")
_SELDON_DATA_KEYS: Final = ("ndarray", "tensor", "tftensor")
_SELDON_SCALAR_KEYS: Final = ("jsonData", "strData", "binData")


class DecodeError(ValueError):
    """The body claims a known protocol (or JSON, or gzip) and is not valid; the message says why."""


def decode_body(body: bytes, content_type: str | None, content_encoding: str | None) -> Payload:
    """Decode one logged body into tensors, whichever protocol it speaks.

    A missing content type means JSON, as CloudEvents says. A body whose content type is not JSON
    and that does not parse as JSON is ``raw``; a body that should be JSON and is not raises.
    """
    body = _inflate(body, content_type, content_encoding)
    if not body.strip():
        return Payload("raw")
    try:
        document = load_json(body, "body")
    except InvalidEvent as exc:
        if _expects_json(content_type):
            raise DecodeError(str(exc)) from exc
        return Payload("raw")
    try:
        return _decode_document(document)
    except RecursionError as exc:
        raise DecodeError("body is nested too deeply") from exc


def _expects_json(content_type: str | None) -> bool:
    return not media_type(content_type) or is_json(content_type)


def _inflate(body: bytes, content_type: str | None, content_encoding: str | None) -> bytes:
    """Undo gzip, whether declared or only recognised by its magic bytes (some loggers do not say)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise DecodeError(f"content encoding {encoding!r} is not supported (gzip or none)")
    if encoding != "gzip" and not body.startswith(GZIP_MAGIC):
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        if encoding == "gzip" or _expects_json(content_type):
            raise DecodeError(f"body is not valid gzip: {exc}") from exc
        return body  # binary data that merely starts with the magic bytes


def _decode_document(document: Any) -> Payload:
    """Pick the protocol from the JSON shape: v2 first, since v1 shares its ``inputs``/``outputs`` keys."""
    if not isinstance(document, dict):
        return Payload("raw")
    v2_keys = [key for key in ("inputs", "outputs") if _is_v2_tensor_list(document.get(key))]
    if v2_keys:
        return Payload("oip-v2", tuple(_v2_tensor(entry) for key in v2_keys for entry in document[key]))
    for key in _V1_KEYS:
        if document.get(key) is not None:
            return Payload("kserve-v1", _v1_tensors(key, document[key]))
    if _is_seldon_data(document.get("data")):
        return Payload("seldon", (_seldon_data(document["data"]),))
    for key in _SELDON_SCALAR_KEYS:
        if key in document:
            return Payload("seldon", (_seldon_scalar(key, document[key]),))
    return Payload("raw")


# Open Inference Protocol v2


def _is_v2_tensor_list(value: Any) -> bool:
    """A non-empty list of tensor entries.

    An entry needs ``name`` and ``datatype`` or ``shape``: a request's ``outputs`` that only name
    the outputs wanted are not tensors, and an entry missing its other fields is a broken tensor
    (an error) rather than v1 data.
    """
    return isinstance(value, list) and bool(value) and all(_is_v2_entry(item) for item in value)


def _is_v2_entry(item: Any) -> bool:
    return isinstance(item, dict) and "name" in item and ("datatype" in item or "shape" in item)


def _v2_tensor(entry: dict[str, Any]) -> Tensor:
    name = entry["name"]
    if not isinstance(name, str):
        raise DecodeError(f"tensor name must be a string, not {name!r}")
    where = f"tensor {name!r}"
    parameters = entry.get("parameters")
    if isinstance(parameters, dict) and "binary_data_size" in parameters:
        raise DecodeError(f"binary tensor data is not supported ({where})")
    datatype = entry.get("datatype")
    if not isinstance(datatype, str) or datatype not in _V2_DTYPES:
        raise DecodeError(f"{where}: unknown datatype {datatype!r}")
    shape = _shape(entry.get("shape"), where)
    if "data" not in entry:
        raise DecodeError(f"{where} has no data")
    values = _flatten(entry["data"])
    if datatype == "BYTES":
        return Tensor(name, _reshape(_utf8_array(values, where), shape, where))
    return Tensor(name, _reshape(_v2_numbers(values, datatype, where), shape, where))


def _flatten(data: Any) -> list[Any]:
    """v2 data may be flat or nested; either way the values come in row-major order."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(item, list) for item in data):
        return data
    return [value for item in data for value in _flatten(item)]


def _v2_numbers(values: list[Any], datatype: str, where: str) -> Array:
    """Numbers as the declared datatype, refusing values that would change in the conversion."""
    dtype = _V2_DTYPES[datatype]
    if dtype.kind == "b":
        if not all(isinstance(value, bool) for value in values):
            raise DecodeError(f"{where}: BOOL data must be true or false")
        return np.array(values, dtype=dtype)
    if dtype.kind in "iu":
        return _v2_integers(values, datatype, where)
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise DecodeError(f"{where}: {datatype} data must be numbers")
    with np.errstate(over="ignore"):  # too large for FP16 or FP32 rounds to inf, as IEEE says
        return array.astype(dtype)


def _v2_integers(values: list[Any], datatype: str, where: str) -> Array:
    """Checked as Python ints: numpy would pass a UINT64 batch through float64 and lose digits."""
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        raise DecodeError(f"{where}: {datatype} data must be integers")
    info = np.iinfo(_V2_DTYPES[datatype])
    if values and (min(values) < info.min or max(values) > info.max):
        raise DecodeError(f"{where}: {datatype} data must lie in [{info.min}, {info.max}]")
    return np.array(values, dtype=info.dtype)


def _utf8_array(values: list[Any], where: str) -> Array:
    """BYTES elements arrive as JSON strings; they are kept as their UTF-8 bytes."""
    if not all(isinstance(value, str) for value in values):
        raise DecodeError(f"{where}: BYTES data must be strings")
    try:
        return np.array([value.encode() for value in values], dtype=object)
    except UnicodeEncodeError as exc:
        raise DecodeError(f"{where}: BYTES data is not valid Unicode: {exc}") from exc


# KServe / TF-Serving v1


def _v1_tensors(key: str, value: Any) -> tuple[Tensor, ...]:
    """Rows of named features, a mapping of named columns, or one array named after the key."""
    if isinstance(value, list) and value and all(_is_named(item) for item in value):
        return _named_rows(key, value)
    if _is_named(value):
        return tuple(Tensor(name, _array(column, name)) for name, column in value.items())
    return (Tensor(key, _array(value, key)),)


def _is_named(value: Any) -> bool:
    """A JSON object of named values, as opposed to a ``{"b64": ...}`` value."""
    return isinstance(value, dict) and not _is_b64(value)


def _named_rows(key: str, rows: list[dict[str, Any]]) -> tuple[Tensor, ...]:
    """``[{"a": 1, "b": 2.5}, ...]``: one tensor per feature, one row per instance."""
    names = rows[0].keys()
    for index, row in enumerate(rows):
        if row.keys() != names:
            missing, extra = sorted(names - row.keys()), sorted(row.keys() - names)
            raise DecodeError(
                f"{key}[{index}] does not have the keys of {key}[0]: missing {missing}, extra {extra}"
            )
    return tuple(Tensor(name, _array([row[name] for row in rows], name)) for name in names)


def _array(value: Any, where: str) -> Array:
    """Nested JSON lists as an array: numbers as numpy infers them, anything else as objects.

    Strings and bytes stay Python objects (numpy's fixed-width strings would silently turn
    numbers into text and strip trailing zero bytes); null among numbers becomes NaN.
    """
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise DecodeError(f"{where!r} is ragged: nested lists of different lengths") from exc
    if array.dtype.kind in "OSU":  # a b64 value makes the array one of these, so only then unwrap
        return _object_array(_unwrap_b64(value), where)
    return array


def _object_array(value: Any, where: str) -> Array:
    array = np.asarray(value, dtype=object)
    leaves = array.reshape(-1).tolist()
    if any(isinstance(leaf, dict) for leaf in leaves):
        raise DecodeError(f"{where!r} holds JSON objects where values belong")
    if all(leaf is None or (isinstance(leaf, int | float) and not isinstance(leaf, bool)) for leaf in leaves):
        return array.astype(np.float64)  # null as NaN, or integers too large for int64
    return array


def _unwrap_b64(value: Any) -> Any:
    """Replace every ``{"b64": "..."}`` with its bytes: TF-Serving's way to send binary in JSON."""
    if isinstance(value, list):
        return [_unwrap_b64(item) for item in value]
    if _is_b64(value):
        return _b64decode(value["b64"], "b64")
    return value


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _b64decode(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise DecodeError(f"{where} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise DecodeError(f"{where} is not valid base64: {exc}") from exc


# Seldon


def _is_seldon_data(data: Any) -> bool:
    return isinstance(data, dict) and any(key in data for key in _SELDON_DATA_KEYS)


def _seldon_data(data: dict[str, Any]) -> Tensor:
    """``data.ndarray`` or ``data.tensor``, with ``data.names`` naming the last axis."""
    if "ndarray" in data:
        name, array = "ndarray", _array(data["ndarray"], "data.ndarray")
    elif "tensor" in data:
        name, array = "tensor", _seldon_tensor(data["tensor"])
    else:
        raise DecodeError("Seldon data.tftensor is not supported")
    return Tensor(name, array, _columns(data.get("names"), array))


def _seldon_tensor(tensor: Any) -> Array:
    if not isinstance(tensor, dict) or "values" not in tensor:
        raise DecodeError("data.tensor must be an object with shape and values")
    shape = _shape(tensor.get("shape"), "data.tensor")
    return _reshape(_array(tensor["values"], "data.tensor"), shape, "data.tensor")


def _columns(names: Any, array: Array) -> tuple[str, ...] | None:
    """Feature names for the last axis; an absent or empty list (Seldon's default) means none."""
    if names is None or names == []:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DecodeError("data.names must be a list of strings")
    width = array.shape[-1] if array.ndim else 0
    if len(names) != width:
        raise DecodeError(f"data.names has {len(names)} names for {width} columns")
    return tuple(names)


def _seldon_scalar(key: str, value: Any) -> Tensor:
    """``jsonData`` as its JSON text, ``strData`` as text, ``binData`` as bytes: each a 0-d array."""
    if key == "jsonData":
        return Tensor(key, _scalar(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
    if key == "strData":
        if not isinstance(value, str):
            raise DecodeError("strData must be a string")
        return Tensor(key, _scalar(value))
    return Tensor(key, _scalar(_b64decode(value, key)))


# Shared


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in value
    ):
        raise DecodeError(f"{where}: shape must be a list of non-negative integers, not {value!r}")
    return tuple(value)


def _reshape(array: Array, shape: tuple[int, ...], where: str) -> Array:
    needed = math.prod(shape)
    if array.size != needed:
        raise DecodeError(f"{where}: shape {list(shape)} needs {needed} values, data has {array.size}")
    try:
        return array.reshape(shape)
    except ValueError as exc:  # more dimensions than numpy allows
        raise DecodeError(f"{where}: {exc}") from exc


def _scalar(value: object) -> Array:
    """A 0-d object array: ``np.array`` would turn a string into a fixed-width string array."""
    array = np.empty((), dtype=object)
    array[()] = value
    return array


def decode_event(event: RawEvent) -> Payload:
    """The body of ``event`` decoded, as its content type and encoding say."""
    return decode_body(event.data, event.attributes.get("datacontenttype"), event.content_encoding)
