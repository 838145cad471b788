"""Kafka topics as sinks: detections as CloudEvents, and records as JSON for inspection.

Both produce through the worker's producer, whose flush and (with exactly-once) transaction the
checkpoint owns: ``flush`` here has nothing left to do.
"""

from __future__ import annotations

from infersight.sinks.base import Batch, Publish
from infersight.sinks.detections import to_kafka
from infersight.sinks.recordjson import record_to_json


class DetectionsTopic:
    """Each detection as a CloudEvent in Kafka's binary binding, keyed by model."""

    name = "detections-topic"

    def __init__(self, topic: str, publish: Publish) -> None:
        self.topic = topic
        self.publish = publish

    def write(self, batch: Batch) -> None:
        for detection in batch.detections:
            message = to_kafka(detection)
            key = message.key.encode() if isinstance(message.key, str) else message.key
            self.publish(self.topic, key, message.value, list(message.headers.items()))

    def flush(self) -> None:
        pass

    @property
    def pending(self) -> bool:
        return False


class RecordsTopic:
    """Each record (scores included) as JSON, keyed by model."""

    name = "records-topic"

    def __init__(self, topic: str, publish: Publish) -> None:
        self.topic = topic
        self.publish = publish

    def write(self, batch: Batch) -> None:
        for record in batch.records:
            self.publish(self.topic, record.model.kafka_key, record_to_json(record), [])

    def flush(self) -> None:
        pass

    @property
    def pending(self) -> bool:
        return False
