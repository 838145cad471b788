"""Reading the payloads and detections topics as they grow, for ``infersight tail``.

A plain consumer: it joins no group and commits nothing, so watching never moves a worker's
offsets. It starts at the topics' ends (or their beginnings) and waits for a topic that does not
exist yet.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from infersight.binding import from_kafka_record
from infersight.config import KafkaConfig
from infersight.kafkaclient import assign_whole_topic, librdkafka_config
from infersight.records import ModelRef

EVENT = "event"
DETECTION = "detection"


@dataclass(frozen=True)
class Seen:
    """One record read: an event's attributes and body size, or a detection's data."""

    kind: str
    model: ModelRef
    attributes: dict[str, str]
    data: dict[str, Any]
    size: int
    #: Where it was read, for a record that is not a CloudEvent or not JSON.
    error: str | None = None


def _event(headers: list[tuple[str, bytes | None]], value: bytes | None) -> Seen:
    try:
        event = from_kafka_record(headers, value)
    except Exception as exc:  # a record no reader takes is shown, not fatal to watching
        return Seen(EVENT, ModelRef("", "", ""), {}, {}, len(value or b""), error=str(exc))
    return Seen(
        EVENT, ModelRef.from_attributes(event.attributes), dict(event.attributes), {}, len(event.data)
    )


def _detection(value: bytes | None) -> Seen:
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return Seen(DETECTION, ModelRef("", "", ""), {}, {}, len(value or b""), error=str(exc))
    if not isinstance(data, dict):
        return Seen(DETECTION, ModelRef("", "", ""), {}, {}, len(value or b""), error="not a JSON object")
    model = ModelRef(
        str(data.get("namespace", "")),
        str(data.get("inferenceservice", "")),
        str(data.get("endpoint", "")),
        str(data.get("component", "")),
    )
    return Seen(DETECTION, model, {}, data, len(value or b""))


def tail(
    config: KafkaConfig,
    *,
    events: bool,
    detections: bool,
    from_beginning: bool = False,
    on_reading: Callable[[list[str]], None] | None = None,
) -> Iterator[Seen]:
    """Every record of the chosen topics from now on (or from their start), as it arrives.

    ``on_reading`` is told each time topics are assigned, with their names.
    """
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            **librdkafka_config(config),
            "client.id": f"{config.client_id}-tail",
            # librdkafka wants a group even for assigned partitions; it joins none, commits nothing.
            "group.id": f"{config.client_id}-tail-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "log_level": 0,
            "error_cb": lambda _error: None,
        }
    )
    topics = {config.topics.payloads: EVENT} if events else {}
    if detections:
        topics[config.topics.detections] = DETECTION
    waiting = set(topics)
    at_end = not from_beginning
    try:
        while True:
            assigned = [
                topic for topic in sorted(waiting) if assign_whole_topic(consumer, topic, at_end=at_end)
            ]
            waiting.difference_update(assigned)
            if assigned and on_reading is not None:
                on_reading(assigned)
            # A topic created after we started holds only new records: it is read from its start.
            at_end = False
            if len(waiting) == len(topics):
                time.sleep(0.5)
                continue
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error() is not None:
                    continue
                if topics[message.topic()] == EVENT:
                    yield _event(message.headers() or [], message.value())
                else:
                    yield _detection(message.value())
    finally:
        consumer.close()
