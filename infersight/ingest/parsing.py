"""Turn an HTTP request into CloudEvents: binary, structured or batch mode.

The envelope is checked and refused when it is not a CloudEvent; the body is data. A binary-mode
body that does not parse as its content type says is kept as sent and marked with the
:data:`~infersight.eventformat.BODY_ERROR` extension, because the KServe logger never sends a
refused event again: a 400 would lose it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from infersight.eventformat import (
    BATCH,
    BODY_ERROR,
    GZIP_MAGIC,
    STRUCTURED,
    InvalidEvent,
    TooLarge,
    body_error_text,
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
) -> tuple[str | None, str | None]:
    """The body's encoding (``gzip`` or None) and why it does not parse as it says (None when it does).

    A JSON body that starts with the gzip magic bytes is gzip even without a Content-Encoding
    header, as some loggers send it. The bytes themselves are kept as sent. Raises TooLarge for
    gzip that inflates past ``limit``.
    """
    gzipped = content_encoding == "gzip" or (is_json(content_type) and body.startswith(GZIP_MAGIC))
    encoding = "gzip" if gzipped else None
    if not body:
        return None, None
    try:
        plain = gunzip(body, limit) if gzipped else body
        if is_json(content_type):
            load_json(plain, "body")
    except TooLarge:
        raise
    except InvalidEvent as exc:
        return encoding, body_error_text(str(exc))
    return encoding, None


def parse_binary(headers: Mapping[str, str], body: bytes, limit: int) -> list[RawEvent]:
    """Binary mode: attributes in ``ce-*`` headers (as KServe and Seldon loggers send), body is the data.

    A mark the client sent is dropped and decided again from the body.
    """
    attributes = {
        name[len(_HEADER_PREFIX) :]: value
        for name, value in headers.items()
        if name.startswith(_HEADER_PREFIX) and name != _HEADER_PREFIX + BODY_ERROR
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
    encoding, problem = body_encoding(body, content_type, encoding, limit)
    if problem is not None:
        attributes[BODY_ERROR] = problem
    return [RawEvent(attributes=attributes, data=body, content_encoding=encoding)]


def unmarked(event: RawEvent) -> RawEvent:
    """The event without a :data:`BODY_ERROR` mark: only the ingest may say a body did not parse."""
    if BODY_ERROR not in event.attributes:
        return event
    attributes = {name: value for name, value in event.attributes.items() if name != BODY_ERROR}
    return dataclasses.replace(event, attributes=attributes)


def parse_batch(body: bytes) -> list[RawEvent]:
    items = load_json(body, "CloudEvents batch")
    if not isinstance(items, list):
        raise InvalidEvent("a CloudEvents batch must be a JSON array")
    return [unmarked(event_from_json(item, f"event [{index}]")) for index, item in enumerate(items)]


def is_binary_mode(headers: Mapping[str, str], kind: str) -> bool:
    """Binary mode: ``ce-specversion``, or any ``ce-*`` header outside the structured content types.

    An event that only lacks its ``ce-specversion`` is then refused as a broken envelope (400),
    not as a content type the ingest does not take (415).
    """
    if "ce-specversion" in headers:
        return True
    return kind not in (STRUCTURED, BATCH) and any(name.startswith(_HEADER_PREFIX) for name in headers)


def parse_request(headers: Mapping[str, str], body: bytes, limit: int) -> list[RawEvent]:
    """All events in one request. ``headers`` must have lower-case names."""
    kind = media_type(headers.get("content-type"))
    try:
        if is_binary_mode(headers, kind):
            return parse_binary(headers, body, limit)
        if kind == STRUCTURED:
            return [unmarked(event_from_json(load_json(body, "structured CloudEvent")))]
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
