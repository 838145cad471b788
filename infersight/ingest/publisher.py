"""Produce events to Kafka and answer only once the broker has acknowledged them.

One idempotent aiokafka producer with ``acks=all`` serves every request; concurrent requests
share its batches. A request waits at most ``ingest.kafka_timeout_seconds``; past that, or when
too many events already wait for Kafka, it is refused with 503 and nothing is acknowledged.
An event whose request timed out may still reach Kafka later, so a client's retry can deliver
it twice: the store is idempotent on the event identity for that reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infersight.binding import to_kafka_headers
from infersight.config import IngestConfig, KafkaConfig
from infersight.ingest.errors import IngestError
from infersight.kafkaclient import aiokafka_options
from infersight.records import RawEvent


class KafkaPublisher:
    """The ingest's one producer, with a bound on events waiting for the broker."""

    def __init__(self, kafka: KafkaConfig, ingest: IngestConfig) -> None:
        self.topic = kafka.topics.payloads
        self.timeout = ingest.kafka_timeout_seconds
        self.max_in_flight = ingest.max_in_flight
        self.in_flight = 0
        self._options = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": ingest.linger_ms,
            "max_request_size": kafka.max_message_bytes,
            "request_timeout_ms": int(self.timeout * 1000),
            **aiokafka_options(kafka),
        }
        self._producer: AIOKafkaProducer
        self._ready_at = 0.0

    async def start(self) -> None:
        """Create and start the producer (aiokafka binds it to the running event loop)."""
        self._producer = AIOKafkaProducer(**self._options)
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, events: Sequence[RawEvent]) -> None:
        """Send the events and wait until Kafka has acknowledged every one of them."""
        if self.in_flight + len(events) > self.max_in_flight:
            raise IngestError("kafka_unavailable", f"{self.in_flight} events already wait for Kafka")
        self.in_flight += len(events)
        try:
            async with asyncio.timeout(self.timeout):
                await self._send_all(events)
        except (KafkaError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise IngestError("kafka_unavailable", f"Kafka did not acknowledge the event: {reason}") from exc
        finally:
            self.in_flight -= len(events)
        self._ready_at = time.monotonic()

    async def _send_all(self, events: Sequence[RawEvent]) -> None:
        deliveries = [
            await self._producer.send(
                self.topic,
                value=event.data,
                key=event.model.partition_key.encode(),
                headers=to_kafka_headers(event.attributes, event.content_encoding),
            )
            for event in events
        ]
        for delivery in deliveries:
            await delivery

    async def ready(self, timeout: float = 2.0) -> bool:
        """True when a broker answered recently, or answers a metadata request now."""
        if time.monotonic() - self._ready_at < 1.0:
            return True
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout)
        except (KafkaError, TimeoutError):
            return False
        self._ready_at = time.monotonic()
        return True
