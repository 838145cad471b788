"""Turn an HTTP request into CloudEvents: binary, structured or batch mode."""

from __future__ import annotations

from collections.abc import Mapping

from infersight.eventformat import (
    BATCH,
    GZIP_MAGIC,
    STRUCTURED,
    InvalidEvent,
    TooLarge,
    event_from_json,
    gunzip,
    is_json,
    load_json,
    media_type,
    validate_attributes,
)
from infersight.ingest.errors import IngestError
from infersight.records import RawEvent

_HEADER_PREFIX = "ce-"


def body_encoding(
    body: bytes, content_type: str | None, content_encoding: str | None, limit: int
) -> str | None:
    """Check a body that says it is gzip or JSON, and return its encoding (``gzip`` or None).

    A JSON body that starts with the gzip magic bytes is gzip even without a Content-Encoding
    header, as some loggers send it. The bytes themselves are kept as sent.
    """
    gzipped = content_encoding == "gzip" or (is_json(content_type) and body.startswith(GZIP_MAGIC))
    if not body:
        return None
    plain = gunzip(body, limit) if gzipped else body
    if is_json(content_type):
        load_json(plain, "body")
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


def parse_batch(body: bytes) -> list[RawEvent]:
    items = load_json(body, "CloudEvents batch")
    if not isinstance(items, list):
        raise InvalidEvent("a CloudEvents batch must be a JSON array")
    return [event_from_json(item, f"event [{index}]") for index, item in enumerate(items)]


def parse_request(headers: Mapping[str, str], body: bytes, limit: int) -> list[RawEvent]:
    """All events in one request. ``headers`` must have lower-case names."""
    try:
        if "ce-specversion" in headers:
            return parse_binary(headers, body, limit)
        kind = media_type(headers.get("content-type"))
        if kind == STRUCTURED:
            return [event_from_json(load_json(body, "structured CloudEvent"))]
        if kind == BATCH:
            return parse_batch(body)
    except TooLarge as exc:
        raise IngestError("too_large", str(exc)) from exc
    except InvalidEvent as exc:
        raise IngestError("malformed", str(exc)) from exc
    raise IngestError(
        "unsupported_media_type",
        f"content type {kind or '(none)'!r} without ce-* headers is not a CloudEvent: send binary mode "
        f"(ce-specversion, ce-id, ce-source, ce-type headers), {STRUCTURED} or {BATCH}",
    )
