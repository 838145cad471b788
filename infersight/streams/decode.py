"""Decode logged request and response bodies into named arrays.

KServe and Seldon loggers send the model's own request or response as the event body, so the
body's shape says which protocol it speaks: Open Inference Protocol v2 (typed tensors under
``inputs`` or ``outputs``), KServe / TF-Serving v1 (``instances``, ``inputs``, ``predictions``,
``outputs``) or Seldon (``data``, ``jsonData``, ``strData``, ``binData``). JSON of any other
shape is ``raw``: stored and counted upstream, never an error. A body that claims JSON, gzip or a
known protocol and is not valid is data too: :func:`decode_event` keeps it ``raw``
(:class:`Undecodable`, with a bounded reason for the counter) rather than losing it.

v2 tensors may also come in the binary data extension: a JSON header whose tensors say
``"parameters": {"binary_data_size": N}`` instead of ``data``, then the tensors' raw bytes, in
the order the header lists them. The HTTP header ``Inference-Header-Content-Length`` says where
the JSON ends, but the KServe agent does not log it, so the length is only a hint: the end of
the JSON is found by reading its top-level object, and the declared sizes say which bytes after
it are tensor data.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from infersight.eventformat import BODY_ERROR, GZIP_MAGIC, InvalidEvent, is_json, load_json, media_type
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


#: The whitespace JSON allows around a value (``bytes.strip()`` would take more).
_JSON_SPACE: Final = b" \t\n\r"
#: Where the JSON header's length may be found when the logger kept it: a CloudEvent attribute
#: (compared with case, ``-`` and ``_`` ignored) or, as SageMaker's Triton sends it, a parameter
#: of the content type.
_HEADER_LENGTH_ATTRIBUTE: Final = "inferenceheadercontentlength"
_HEADER_LENGTH_PARAMETER: Final = "json-header-size"


#: Why a body is kept raw instead of decoded: the ``reason`` label of
#: ``infersight_undecodable_payloads_total``, a fixed set so that the label stays bounded.
INVALID_JSON: Final = "invalid_json"
INVALID_GZIP: Final = "invalid_gzip"
UNSUPPORTED_ENCODING: Final = "unsupported_encoding"
INVALID_TENSOR: Final = "invalid_tensor"
MARKED_BY_INGEST: Final = "marked_by_ingest"
UNDECODABLE_REASONS: Final = (
    INVALID_JSON,
    INVALID_GZIP,
    UNSUPPORTED_ENCODING,
    INVALID_TENSOR,
    MARKED_BY_INGEST,
)


class DecodeError(ValueError):
    """The body claims a known protocol (or JSON, or gzip) and is not valid; the message says why.

    ``reason`` is one of :data:`UNDECODABLE_REASONS` (never :data:`MARKED_BY_INGEST`, which only
    :func:`decode_event` gives).
    """

    def __init__(self, message: str, reason: str = INVALID_TENSOR) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class Undecodable(Payload):
    """A body that would not decode, kept ``raw`` byte for byte like any body of no known protocol.

    ``reason`` (one of :data:`UNDECODABLE_REASONS`) is what the worker counts; ``detail`` is the
    decoder's message.
    """

    reason: str = INVALID_TENSOR
    detail: str = ""


def decode_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    header_length: int | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Payload:
    """Decode one logged body into tensors, whichever protocol it speaks.

    A missing content type means JSON, as CloudEvents says. A body whose content type is not JSON
    and that does not parse as JSON is ``raw``; a body that should be JSON and is not raises.

    ``header_length`` is the v2 binary extension's ``Inference-Header-Content-Length`` when the
    event kept it (else a ``json-header-size`` content type parameter is used). It is a hint, not
    trusted: a length that does not end the JSON header is ignored and the header's end found by
    reading the JSON itself, so a body decodes the same with the right length, a wrong one or none.
    The event's ``attributes`` are searched for that length only when the body is not plain JSON.
    """
    body = _inflate(body, content_type, content_encoding)
    if not body or body.isspace():
        return Payload("raw")
    try:
        document = load_json(body, "body")
        # Binary tensor bytes that are all whitespace still parse as JSON: they follow its end.
        json_end = len(body.rstrip(_JSON_SPACE)) if body[-1:].isspace() else len(body)
    except InvalidEvent as exc:
        if header_length is None and attributes is not None:
            header_length = header_length_of(attributes)
        if header_length is None:
            header_length = _content_type_header_length(content_type)
        split = _split_binary(body, header_length)
        if split is None:
            if _expects_json(content_type):
                raise DecodeError(str(exc), INVALID_JSON) from exc
            return Payload("raw")
        document, json_end = split
    try:
        return _decode_document(document, body[json_end:])
    except RecursionError as exc:
        raise DecodeError("body is nested too deeply") from exc


def _expects_json(content_type: str | None) -> bool:
    return not media_type(content_type) or is_json(content_type)


def _inflate(body: bytes, content_type: str | None, content_encoding: str | None) -> bytes:
    """Undo gzip, whether declared or only recognised by its magic bytes (some loggers do not say)."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise DecodeError(
            f"content encoding {encoding!r} is not supported (gzip or none)", UNSUPPORTED_ENCODING
        )
    if encoding != "gzip" and not body.startswith(GZIP_MAGIC):
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        if encoding == "gzip" or _expects_json(content_type):
            raise DecodeError(f"body is not valid gzip: {exc}", INVALID_GZIP) from exc
        return body  # binary data that merely starts with the magic bytes


def _decode_document(document: Any, tail: bytes = b"") -> Payload:
    """Pick the protocol from the JSON shape: v2 first, since v1 shares its ``inputs``/``outputs`` keys.

    ``tail`` is what follows the JSON in the body: whitespace, or v2 binary tensor data.
    """
    if not isinstance(document, dict):
        return Payload("raw")
    entries = _v2_entries(document)
    if entries:
        chunks = _binary_chunks(tail, [_binary_size(entry) for entry in entries])
        return Payload(
            "oip-v2", tuple(_v2_tensor(entry, chunk) for entry, chunk in zip(entries, chunks, strict=True))
        )
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


def _v2_entries(document: dict[str, Any]) -> list[Any]:
    """The tensor entries of a v2 request or response, ``inputs`` before ``outputs``; empty if not v2."""
    if "inputs" not in document and "outputs" not in document:  # v1 and Seldon bodies
        return []
    return [
        entry
        for key in ("inputs", "outputs")
        if _is_v2_tensor_list(document.get(key))
        for entry in document[key]
    ]


def _is_v2_tensor_list(value: Any) -> bool:
    """A non-empty list of tensor entries.

    An entry needs ``name`` and ``datatype`` or ``shape``: a request's ``outputs`` that only name
    the outputs wanted are not tensors, and an entry missing its other fields is a broken tensor
    (an error) rather than v1 data.
    """
    return isinstance(value, list) and bool(value) and all(_is_v2_entry(item) for item in value)


def _is_v2_entry(item: Any) -> bool:
    return isinstance(item, dict) and "name" in item and ("datatype" in item or "shape" in item)


def _v2_tensor(entry: dict[str, Any], chunk: bytes | None = None) -> Tensor:
    """One v2 tensor from its JSON ``data``, or from ``chunk``, its bytes in the binary extension."""
    where = _where(entry)
    datatype = entry.get("datatype")
    if not isinstance(datatype, str) or datatype not in _V2_DTYPES:
        raise DecodeError(f"{where}: unknown datatype {datatype!r}")
    shape = _shape(entry.get("shape"), where)
    if chunk is not None:
        if "data" in entry:
            raise DecodeError(f"{where} has both data and binary_data_size")
        return Tensor(entry["name"], _reshape(_v2_binary(chunk, datatype, where), shape, where))
    if "data" not in entry:
        raise DecodeError(f"{where} has no data")
    values = _flatten(entry["data"])
    if datatype == "BYTES":
        return Tensor(entry["name"], _reshape(_utf8_array(values, where), shape, where))
    return Tensor(entry["name"], _reshape(_v2_numbers(values, datatype, where), shape, where))


def _where(entry: dict[str, Any]) -> str:
    name = entry["name"]
    if not isinstance(name, str):
        raise DecodeError(f"tensor name must be a string, not {name!r}")
    return f"tensor {name!r}"


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


# Open Inference Protocol v2, binary data extension


def _content_type_header_length(content_type: str | None) -> int | None:
    """``json-header-size`` from ``application/vnd.sagemaker-triton.binary+json;json-header-size=N``."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == _HEADER_LENGTH_PARAMETER:
            return _length(value)
    return None


def header_length_of(attributes: Mapping[str, str]) -> int | None:
    """The JSON header's length if the event kept ``Inference-Header-Content-Length``; None if not.

    A value that is not a non-negative integer is treated as absent: the length is only a hint.
    """
    for name, value in attributes.items():
        if name.replace("-", "").replace("_", "").lower() == _HEADER_LENGTH_ATTRIBUTE:
            return _length(value)
    return None


def _length(text: str) -> int | None:
    text = text.strip().strip('"')
    # Past 18 digits no body is that long, and past 4300 int() refuses the text.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _split_binary(body: bytes, header_length: int | None) -> tuple[dict[str, Any], int] | None:
    """The JSON header of a v2 body in the binary extension and the offset where it ends.

    None when the body is no JSON object followed by bytes, or when that object declares no
    binary tensor data: such a body is then what it was before, broken JSON or raw bytes.
    """
    found = None
    if header_length is not None and 0 < header_length < len(body):
        found = _json_object(body[:header_length])
    if found is None:
        end = _json_object_end(body)
        found = _json_object(body[:end]) if end is not None else None
    if found is None or not any(_binary_size(entry) is not None for entry in _v2_entries(found[0])):
        return None
    return found


def _json_object(header: bytes) -> tuple[dict[str, Any], int] | None:
    """``header`` as a JSON object, with where the object ends (before any trailing whitespace)."""
    try:
        document = load_json(header, "body")
    except InvalidEvent:
        return None
    if not isinstance(document, dict):
        return None
    return document, len(header.rstrip(_JSON_SPACE))


def _json_object_end(body: bytes) -> int | None:
    """Where the top-level JSON object that starts ``body`` closes, found by reading it.

    Read as Latin-1, every byte is one character: the offset in the text is the offset in the
    bytes, and the UTF-8 of a non-ASCII character (bytes 0x80 and above) can never be mistaken for
    a quote, a backslash or a brace. Strings and escapes are the JSON decoder's to get right.
    """
    start = len(body) - len(body.lstrip(_JSON_SPACE))
    if body[start : start + 1] != b"{":
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(body.decode("latin-1"), start)
    except (ValueError, RecursionError):
        return None
    return int(end)


def _binary_size(entry: dict[str, Any]) -> int | None:
    """The entry's ``binary_data_size``: None when its data is JSON."""
    parameters = entry.get("parameters")
    if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise DecodeError(f"{_where(entry)}: binary_data_size must be a non-negative integer, not {size!r}")
    return size


def _binary_chunks(tail: bytes, sizes: list[int | None]) -> list[bytes | None]:
    """Cut the bytes after the JSON header into each tensor's data, in the header's order.

    The data is the last ``sum(sizes)`` bytes of the body; what lies between the JSON and the data
    may only be whitespace, which a header length may or may not have counted.
    """
    total = sum(size for size in sizes if size is not None)
    gap = len(tail) - total
    if gap < 0:
        raise DecodeError(
            f"binary tensor data is truncated: the tensors declare {total} bytes (binary_data_size), "
            f"the body has {len(tail)} after the JSON header"
        )
    if tail[:gap].strip(_JSON_SPACE):
        raise DecodeError(
            f"the body has {len(tail)} bytes after the JSON header, more than the {total} bytes of binary "
            "tensor data its tensors declare (binary_data_size)"
        )
    chunks: list[bytes | None] = []
    offset = gap
    for size in sizes:
        if size is None:
            chunks.append(None)
        else:
            chunks.append(tail[offset : offset + size])
            offset += size
    return chunks


def _v2_binary(chunk: bytes, datatype: str, where: str) -> Array:
    """A tensor's raw bytes as an array: little-endian, row-major, as the extension specifies."""
    if datatype == "BYTES":
        return _binary_bytes(chunk, where)
    wire = np.dtype("<u2") if datatype == "BF16" else _V2_DTYPES[datatype].newbyteorder("<")
    if len(chunk) % wire.itemsize:
        raise DecodeError(
            f"{where}: {len(chunk)} bytes of {datatype} data is not a whole number of "
            f"{wire.itemsize}-byte values"
        )
    raw = np.frombuffer(chunk, dtype=wire)
    if datatype == "BF16":  # the upper half of a float32
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if datatype == "BOOL" and raw.size and raw.view(np.uint8).max() > 1:
        raise DecodeError(f"{where}: BOOL data must be bytes 0 or 1")
    return raw.astype(_V2_DTYPES[datatype])  # a copy in native byte order


def _binary_bytes(chunk: bytes, where: str) -> Array:
    """BYTES elements, each a 4-byte little-endian length and then that many bytes."""
    values: list[bytes] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise DecodeError(f"{where}: BYTES data ends inside the length of element {len(values)}")
        size = int.from_bytes(chunk[offset : offset + 4], "little")
        offset += 4
        if offset + size > len(chunk):
            raise DecodeError(
                f"{where}: BYTES element {len(values)} needs {size} bytes, {len(chunk) - offset} are left"
            )
        values.append(chunk[offset : offset + size])
        offset += size
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# KServe / TF-Serving v1


def _v1_tensors(key: str, value: Any) -> tuple[Tensor, ...]:
    """Rows of named features, a mapping of named columns, or one array named after the key."""
    if isinstance(value, list) and value and _is_named(value[0]) and all(map(_is_named, value)):
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
    """The body of ``event`` decoded, as its content type and encoding say; :class:`Undecodable` if not.

    Never raises on a bad body: the body is data, stored raw and counted. The pairing decodes
    waiting halves again with this, and the same bytes give the same answer. A body the ingest
    marked (:data:`~infersight.eventformat.BODY_ERROR`) is still tried, since a v2 body in the
    binary extension is no JSON to the ingest; when it fails, the ingest's finding is the reason.
    """
    attributes = event.attributes
    content_type = attributes.get("datacontenttype")
    try:
        return decode_body(event.data, content_type, event.content_encoding, None, attributes)
    except DecodeError as exc:
        reason = MARKED_BY_INGEST if BODY_ERROR in attributes else exc.reason
        return Undecodable("raw", (), reason, str(exc))
