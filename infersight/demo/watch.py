"""Read the detections topic while the demo runs: what the live view and the final table count.

A plain Kafka consumer (no group joined, nothing committed) starts at the topic's end when the demo
starts, so only this run's detections are seen.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer

from infersight.config import KafkaConfig
from infersight.kafkaclient import assign_whole_topic, librdkafka_config


class DetectionWatcher(threading.Thread):
    """Collects every detection event of one namespace from the detections topic."""

    def __init__(self, config: KafkaConfig, namespace: str) -> None:
        super().__init__(name="detection-watcher", daemon=True)
        self.consumer = Consumer(
            {
                **librdkafka_config(config),
                "client.id": f"{config.client_id}-demo",
                # librdkafka wants a group even for assigned partitions; it joins none, commits nothing.
                "group.id": f"{config.client_id}-demo-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # The demo says what matters; a broker restarting is not worth a line on stderr.
                "log_level": 0,
                "error_cb": lambda _error: None,
            }
        )
        self.topic = config.topics.detections
        self.namespace = namespace
        self.detections: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._assigned = self._assign(at_end=True)

    def _assign(self, *, at_end: bool) -> bool:
        return assign_whole_topic(self.consumer, self.topic, at_end=at_end)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self._assigned:
                    # The worker creates the topic when it starts: everything in it is this run's.
                    self._assigned = self._assign(at_end=False)
                    if not self._assigned:
                        self._halt.wait(0.5)
                    continue
                for message in self.consumer.consume(num_messages=500, timeout=0.3):
                    if message.error() is None:
                        self._take(message.value())
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
