"""Dead letters: what could not be read, stored or delivered, with the reason in a header."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from infersight.binding import event_headers
from infersight.records import Detection, InferenceRecord
from infersight.sinks.base import Headers, Publish
from infersight.sinks.detections import to_kafka

REASON_HEADER = "infersight-deadletter-reason"
ORIGIN_HEADER = "infersight-deadletter-origin"
REASONS = ("invalid_event", "store_refused", "reply_failed")


class DeadLetters:
    """Sends dead letters to one topic and counts them by reason."""

    def __init__(self, topic: str, publish: Publish, registry: CollectorRegistry) -> None:
        self.topic = topic
        self.publish = publish
        self.sent = Counter(
            "infersight_deadletters_total",
            "Events sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:  # at zero from the start, so the first dead letter is an increase
            self.sent.labels(reason)

    def send(self, key: bytes | None, value: bytes, headers: Headers, reason: str, detail: str) -> None:
        self.publish(self.topic, key, value, [*headers, (REASON_HEADER, f"{reason}: {detail}".encode())])
        self.sent.labels(reason).inc()

    def record(self, record: InferenceRecord, reason: str, detail: str) -> None:
        """Each half of ``record`` as the event it came in as, so it can be sent again once fixed."""
        key = record.model.kafka_key
        for half in (record.request, record.response):
            if half is not None:
                self.send(key, half.event.data, event_headers(half.event), reason, detail)

    def detection(self, detection: Detection, reason: str, detail: str) -> None:
        message = to_kafka(detection)
        key = message.key.encode() if isinstance(message.key, str) else message.key
        self.send(key, message.value, list(message.headers.items()), reason, detail)
