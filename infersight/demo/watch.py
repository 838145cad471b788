"""Read the detections topic while the demo runs: what the live view and the final table count.

A plain Kafka consumer (no group, nothing committed) starts at the topic's end when the demo
starts, so only this run's detections are seen.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from infersight.config import KafkaConfig
from infersight.kafkaclient import kafka_python_options


class DetectionWatcher(threading.Thread):
    """Collects every detection event of one namespace from the detections topic."""

    def __init__(self, config: KafkaConfig, namespace: str) -> None:
        super().__init__(name="detection-watcher", daemon=True)
        options = kafka_python_options(config)
        options.pop("client_id", None)
        self.consumer = KafkaConsumer(
            **options, client_id=f"{config.client_id}-demo", enable_auto_commit=False
        )
        self.topic = config.topics.detections
        self.namespace = namespace
        self.detections: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._assigned = self._assign(at_end=True)

    def _assign(self, *, at_end: bool) -> bool:
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            return False
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        self.consumer.assign(assigned)
        if at_end:
            self.consumer.seek_to_end(*assigned)
            for partition in assigned:  # resolve the end now, before any event is sent
                self.consumer.position(partition)
        else:
            self.consumer.seek_to_beginning(*assigned)
        return True

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self._assigned:
                    # The worker creates the topic when it starts: everything in it is this run's.
                    with contextlib.suppress(Exception):
                        self.consumer.topics()
                    self._assigned = self._assign(at_end=False)
                    if not self._assigned:
                        self._halt.wait(0.5)
                    continue
                for batch in self.consumer.poll(timeout_ms=300).values():
                    for message in batch:
                        self._take(message.value)
        finally:
            self.consumer.close()

    def _take(self, value: bytes | None) -> None:
        if not value:
            return
        with contextlib.suppress(orjson.JSONDecodeError):
            data = orjson.loads(value)
            if isinstance(data, dict) and data.get("namespace") == self.namespace:
                with self._lock:
                    self.detections.append(data)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.detections)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
