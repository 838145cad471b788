"""The CloudEvents Kafka protocol binding, binary mode, with attribute values kept byte for byte.

Each attribute becomes a ``ce_<name>`` header holding its original UTF-8 text; ``datacontenttype``
travels as ``content-type``. The record value is the event data, untouched. Values are not
re-encoded (no percent-encoding, no time normalisation), so a consumer sees exactly what the
model server sent.
"""

from __future__ import annotations

from collections.abc import Mapping

CONTENT_TYPE_HEADER = "content-type"
CONTENT_ENCODING_HEADER = "content-encoding"
ATTRIBUTE_PREFIX = "ce_"


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
