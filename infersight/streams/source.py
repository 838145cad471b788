"""Kafka records in, the events the worker takes out: read, checked, sampled and redacted, decoded.

Each step hands back None for a record that goes no further: one that is no CloudEvent is
dead-lettered here with its reason and origin, one the model's sampling leaves out is counted. A
request or response whose body does not decode goes on, kept raw: the body is data. Nothing here
knows the stream engine, so every step is tested with plain records; :mod:`infersight.streams.app`
calls them in this order for each record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from infersight.binding import event_headers, from_kafka_record
from infersight.eventformat import InvalidEvent
from infersight.privacy import TrafficRules
from infersight.records import FEEDBACK, SELDON_FEEDBACK, Half, ModelRef, RawEvent, event_type_label, half_of
from infersight.sinks.base import Headers
from infersight.sinks.deadletter import ORIGIN_HEADER, DeadLetters
from infersight.streams.decode import Undecodable, decode_event
from infersight.streams.metrics import StreamMetrics

log = logging.getLogger("infersight.worker")

FEEDBACK_TYPES = frozenset({FEEDBACK, SELDON_FEEDBACK})
RecordHeaders = Sequence[tuple[str, bytes | None]] | None


class RecordPlace(Protocol):
    """Where a record sits: the engine's message context has these."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


#: Where a record came from, as ``topic/partition/offset`` or the place it is worked out from
#: only when something is logged or dead-lettered: most records never need the text.
Origin = RecordPlace | str


def origin_text(origin: Origin) -> str:
    return origin if isinstance(origin, str) else f"{origin.topic}/{origin.partition}/{origin.offset}"


class Source:
    """The steps between a Kafka record and a half for pairing (or a feedback event for the store)."""

    def __init__(self, rules: TrafficRules, deadletters: DeadLetters, metrics: StreamMetrics) -> None:
        self.rules = rules
        self.deadletters = deadletters
        self.metrics = metrics

    def read(self, value: bytes | None, headers: RecordHeaders, origin: Origin) -> RawEvent | None:
        """The event the record carries (binary, structured or Seldon's), or None: dead-lettered."""
        try:
            return from_kafka_record(headers or (), value)
        except InvalidEvent as exc:
            self.dead_letter(value, _pairs(headers), origin, "invalid_event", str(exc))
            return None

    def admit(self, event: RawEvent, model: ModelRef, origin: Origin) -> RawEvent | None:
        """The event as its model's sampling and redaction keep it, or None: sampled out or refused."""
        try:
            kept = self.rules.apply(event)
        except InvalidEvent as exc:
            self.dead_letter(event.data, event_headers(event), origin, "invalid_event", str(exc))
            return None
        if kept is None:
            self.metrics.sampled_out(event)
        return kept

    def rekeyed(
        self, received: RawEvent, kept: RawEvent, value: bytes | None, headers: RecordHeaders
    ) -> tuple[bytes, bytes, Headers]:
        """Key, value and headers to write ``kept`` to the payloads topic under its model's key.

        Byte for byte what came when the rules changed nothing; re-encoded, in the shape it came
        in, when they redacted something.
        """
        key = received.model.kafka_key
        if kept is received:
            return key, value or b"", _pairs(headers)
        return key, kept.data, event_headers(kept)

    def half(self, event: RawEvent, origin: Origin) -> Half | None:
        """A request or response decoded for pairing, raw if its body would not decode; None for others.

        Other events are counted by type. A body that does not decode is paired and stored as it
        came, and counted once its record is handed on (with the raw payloads).
        """
        if half_of(event) is None:
            self.metrics.other_events.labels(event_type_label(event.type)).inc()
            return None
        payload = decode_event(event)
        if isinstance(payload, Undecodable):
            log.info(
                "a body from %s is kept raw: %s: %s", origin_text(origin), payload.reason, payload.detail
            )
        return Half(event=event, payload=payload, received_at=time.time())

    def dead_letter(
        self, value: bytes | None, headers: Headers, origin: Origin, reason: str, detail: str
    ) -> None:
        where = origin_text(origin)
        log.warning("dead letter from %s: %s: %s", where, reason, detail)
        self.deadletters.send(None, value or b"", [*headers, (ORIGIN_HEADER, where.encode())], reason, detail)


def is_feedback(event: RawEvent) -> bool:
    return event.type in FEEDBACK_TYPES


def _pairs(headers: RecordHeaders) -> Headers:
    return [(name, raw or b"") for name, raw in headers or ()]
