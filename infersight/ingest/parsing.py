"""Turn an HTTP request into CloudEvents: binary, structured or batch mode.

The cloudevents SDK validates each event against the specification; what we keep are the
attribute texts and body bytes as received, because the SDK re-encodes both (it adds ``time``,
normalises timestamps and re-serialises JSON data) and the contract promises them untouched.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from dateutil.parser import isoparse

from infersight.ingest.errors import IngestError
from infersight.records import RawEvent

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_PREFIX = "ce-"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)  # fast, and takes RFC 3339 with nanoseconds since 3.11
    except ValueError:
        pass
    try:
        return isoparse(text)
    except (ValueError, OverflowError) as exc:
        raise IngestError("malformed", f"attribute 'time' is not an RFC 3339 timestamp: {exc}") from exc


def validate_attributes(attributes: Mapping[str, str]) -> None:
    """Check one event's context attributes with the SDK's own rules for its spec version."""
    candidate: dict[str, Any] = dict(attributes)
    if "time" in candidate:
        candidate["time"] = _timestamp(candidate["time"])
    factory = get_event_factory_for_version(candidate.get("specversion", ""))
    try:
        factory(candidate, None)
    except CloudEventValidationError as exc:
        problems = "; ".join(f"{name}: {errors[0]}" for name, errors in exc.errors.items())
        raise IngestError("malformed", f"not a valid CloudEvent: {problems}") from exc
    except BaseCloudEventException as exc:
        raise IngestError("malformed", f"not a valid CloudEvent: {exc}") from exc


def _decompressed(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise IngestError("malformed", f"body is not valid gzip: {exc}") from exc
    if len(plain) > limit:
        raise IngestError("too_large", f"body exceeds {limit} bytes once decompressed")
    if not inflater.eof:
        raise IngestError("malformed", "body is not valid gzip: the stream is truncated")
    return plain


def _check_json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # Model servers may write NaN or Infinity, which orjson refuses and Python's json accepts.
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IngestError("malformed", f"{what} is not valid JSON: {exc}") from exc


def body_encoding(
    body: bytes, content_type: str | None, content_encoding: str | None, limit: int
) -> str | None:
    """Check a body that says it is gzip or JSON, and return its encoding (``gzip`` or None).

    A JSON body that starts with the gzip magic bytes is gzip even without a Content-Encoding
    header, as some loggers send it. The bytes themselves are kept as sent.
    """
    gzipped = content_encoding == "gzip" or (is_json(content_type) and body.startswith(_GZIP_MAGIC))
    if not body:
        return None
    plain = _decompressed(body, limit) if gzipped else body
    if is_json(content_type):
        _check_json(plain, "body")
    return "gzip" if gzipped else None


def parse_binary(headers: Mapping[str, str], body: bytes, limit: int) -> list[RawEvent]:
    """Binary mode: attributes in ``ce-*`` headers (as KServe and Seldon loggers send), body is the data."""
    attributes = {
        name[len(_HEADER_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_HEADER_PREFIX)
    }
    content_type = headers.get("content-type")
    if content_type:
        attributes["datacontenttype"] = content_type
    validate_attributes(attributes)
    encoding = headers.get("content-encoding", "").strip().lower() or None
    if encoding not in (None, "gzip", "identity"):
        raise IngestError(
            "unsupported_media_type", f"content-encoding {encoding!r} is not supported (gzip or none)"
        )
    encoding = body_encoding(body, content_type, encoding, limit)
    return [RawEvent(attributes=attributes, data=body, content_encoding=encoding)]


def _attribute_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    raise IngestError("malformed", f"attribute {name!r} must be a string, integer or boolean")


def event_from_json(envelope: Any, where: str = "event") -> RawEvent:
    """One event in the JSON format: ``data`` is re-serialised compactly, ``data_base64`` decoded."""
    if not isinstance(envelope, dict):
        raise IngestError("malformed", f"{where} must be a JSON object")
    attributes: dict[str, str] = {}
    for name, value in envelope.items():
        if name in ("data", "data_base64") or value is None:
            continue
        attributes[name] = _attribute_text(name, value)
    try:
        validate_attributes(attributes)
    except IngestError as exc:
        raise IngestError(exc.reason, f"{where}: {exc.message}") from exc
    if "data_base64" in envelope and envelope["data_base64"] is not None:
        if "data" in envelope:
            raise IngestError("malformed", f"{where}: 'data' and 'data_base64' are mutually exclusive")
        encoded = envelope["data_base64"]
        if not isinstance(encoded, str):
            raise IngestError("malformed", f"{where}: 'data_base64' must be a string")
        try:
            return RawEvent(attributes=attributes, data=base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise IngestError("malformed", f"{where}: 'data_base64' is not valid base64") from exc
    data = envelope.get("data")
    if data is None:
        return RawEvent(attributes=attributes, data=b"")
    if isinstance(data, str) and not is_json(attributes.get("datacontenttype", "application/json")):
        return RawEvent(attributes=attributes, data=data.encode())
    try:
        return RawEvent(attributes=attributes, data=orjson.dumps(data))
    except (TypeError, orjson.JSONEncodeError):
        # NaN or Infinity, which orjson will not write: keep them as Python's json writes them.
        return RawEvent(attributes=attributes, data=json.dumps(data, separators=(",", ":")).encode())


def parse_structured(body: bytes) -> list[RawEvent]:
    return [event_from_json(_check_json(body, "structured CloudEvent"))]


def parse_batch(body: bytes) -> list[RawEvent]:
    items = _check_json(body, "CloudEvents batch")
    if not isinstance(items, list):
        raise IngestError("malformed", "a CloudEvents batch must be a JSON array")
    return [event_from_json(item, f"event [{index}]") for index, item in enumerate(items)]


def parse_request(headers: Mapping[str, str], body: bytes, limit: int) -> list[RawEvent]:
    """All events in one request. ``headers`` must have lower-case names."""
    if "ce-specversion" in headers:
        return parse_binary(headers, body, limit)
    kind = media_type(headers.get("content-type"))
    if kind == STRUCTURED:
        return parse_structured(body)
    if kind == BATCH:
        return parse_batch(body)
    raise IngestError(
        "unsupported_media_type",
        f"content type {kind or '(none)'!r} without ce-* headers is not a CloudEvent: send binary mode "
        f"(ce-specversion, ce-id, ce-source, ce-type headers), {STRUCTURED} or {BATCH}",
    )
