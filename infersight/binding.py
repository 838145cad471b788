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
    event_from_json,
    load_json,
    media_type,
    validate_attributes,
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


def _texts(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, value in headers:
        try:
            texts[name.lower()] = (value or b"").decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"header {name!r} is not valid UTF-8") from exc
    return texts


def from_kafka_record(headers: Iterable[tuple[str, bytes | None]], value: bytes | None) -> RawEvent:
    """The event a Kafka record carries, in whichever of the three shapes it was written."""
    texts = _texts(headers)
    body = value or b""
    encoding = texts.get(CONTENT_ENCODING_HEADER) or None
    if any(name.startswith(ATTRIBUTE_PREFIX) for name in texts):
        attributes = {
            name[len(ATTRIBUTE_PREFIX) :]: text
            for name, text in texts.items()
            if name.startswith(ATTRIBUTE_PREFIX)
        }
        if CONTENT_TYPE_HEADER in texts:
            attributes["datacontenttype"] = texts[CONTENT_TYPE_HEADER]
        validate_attributes(attributes)
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
