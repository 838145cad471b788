"""CloudEvents on Kafka records, both ways, with attribute values kept byte for byte.

Written by the ingest in binary mode: each attribute becomes a ``ce_<name>`` header holding its
original UTF-8 text; ``datacontenttype`` travels as ``content-type``; the record value is the
event data, untouched. Values are not re-encoded (no percent-encoding, no time normalisation),
so a consumer sees exactly what the model server sent.

Read back from three shapes: that binary mode (also what Knative's KafkaSink writes), structured
mode (``content-type: application/cloudevents+json``, the value is the JSON envelope), and
Seldon Core's direct Kafka logger, whose plain headers (``type``, ``requestid``, ``modelid``, ...)
are not a CloudEvent but carry the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from infersight.eventformat import (
    STRUCTURED,
    InvalidEvent,
    check_attributes,
    event_from_json,
    load_json,
    media_type,
)
from infersight.records import RawEvent

CONTENT_TYPE_HEADER = "content-type"
CONTENT_ENCODING_HEADER = "content-encoding"
ATTRIBUTE_PREFIX = "ce_"
SELDON_HEADERS = ("type", "requestid", "modelid", "inferenceservicename", "namespace", "endpoint", "protocol")


def to_kafka_headers(
    attributes: Mapping[str, str], content_encoding: str | None = None
) -> list[tuple[str, bytes]]:
    """Kafka headers for one event: ``ce_*`` attributes, ``content-type`` and the body's encoding."""
    headers: list[tuple[str, bytes]] = []
    for name, value in attributes.items():
        if name == "datacontenttype":
            headers.append((CONTENT_TYPE_HEADER, value.encode()))
        else:
            headers.append((ATTRIBUTE_PREFIX + name, value.encode()))
    if content_encoding:
        headers.append((CONTENT_ENCODING_HEADER, content_encoding.encode()))
    return headers


#: Header name → (attribute name or None, lower-case header name): the same few names come in
#: every record, so each is worked out once (up to a bound, past which they are not remembered).
_HEADER_NAMES: dict[str, tuple[str | None, str]] = {}
_HEADER_NAMES_KEPT = 4096


def event_headers(event: RawEvent) -> list[tuple[str, bytes]]:
    """Kafka headers that :func:`from_kafka_record` reads back as ``event``, in the shape it came in.

    A CloudEvent goes in binary mode; an event of Seldon's direct logger (which carries no
    ``specversion``) keeps its plain headers.
    """
    if "specversion" in event.attributes:
        return to_kafka_headers(event.attributes, event.content_encoding)
    headers = [
        (CONTENT_TYPE_HEADER if name == "datacontenttype" else name, value.encode())
        for name, value in event.attributes.items()
    ]
    if event.content_encoding:
        headers.append((CONTENT_ENCODING_HEADER, event.content_encoding.encode()))
    return headers


def _header_name(name: str) -> tuple[str | None, str]:
    known = _HEADER_NAMES.get(name)
    if known is None:
        lowered = name.lower()
        attribute = lowered[len(ATTRIBUTE_PREFIX) :] if lowered.startswith(ATTRIBUTE_PREFIX) else None
        known = (attribute, lowered)
        if len(_HEADER_NAMES) < _HEADER_NAMES_KEPT:
            _HEADER_NAMES[name] = known
    return known


def _split_headers(headers: Iterable[tuple[str, bytes | None]]) -> tuple[dict[str, str], dict[str, str]]:
    """The ``ce_`` attributes and the other headers, as text, in one pass over the record's headers."""
    attributes: dict[str, str] = {}
    others: dict[str, str] = {}
    for name, value in headers:
        try:
            text = value.decode() if value else ""
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name!r} is not valid UTF-8") from exc
        attribute, lowered = _HEADER_NAMES.get(name) or _header_name(name)
        if attribute is not None:
            attributes[attribute] = text
        else:
            others[lowered] = text
    return attributes, others


def from_kafka_record(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> RawEvent:
    """The event a Kafka record carries, in whichever of the three shapes it was written."""
    attributes, texts = _split_headers(headers)
    body = value or b""
    encoding = texts.get(CONTENT_ENCODING_HEADER) or None
    if attributes:
        if CONTENT_TYPE_HEADER in texts:
            attributes["datacontenttype"] = texts[CONTENT_TYPE_HEADER]
        check_attributes(attributes)
        return RawEvent(attributes=attributes, data=body, content_encoding=encoding)
    if media_type(texts.get(CONTENT_TYPE_HEADER)) == STRUCTURED:
        return event_from_json(load_json(body, "structured CloudEvent"))
    if "type" in texts and "requestid" in texts:
        attributes = {name: texts[name] for name in SELDON_HEADERS if name in texts}
        if CONTENT_TYPE_HEADER in texts:
            attributes["datacontenttype"] = texts[CONTENT_TYPE_HEADER]
        return RawEvent(attributes=attributes, data=body, content_encoding=encoding)
    raise InvalidEvent(
        "not a CloudEvent: no ce_ headers, no structured content type, no Seldon logger headers"
    )
