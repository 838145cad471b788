"""Produce events to Kafka and answer only once the broker has acknowledged them.

One idempotent aiokafka producer with ``acks=all`` serves every request; concurrent requests
share its batches. A request waits at most ``ingest.kafka_timeout_seconds``; past that, or when
too many events already wait for Kafka, it is refused with 503 and nothing is acknowledged.
An event whose request timed out may still reach Kafka later, so a client's retry can deliver
it twice: the store is idempotent on the event identity for that reason.

After a failure the producer is replaced. An idempotent producer whose batches expired while
the broker was away keeps sequence numbers the broker no longer accepts
(``OutOfOrderSequenceException`` on every later batch) and aiokafka does not recover from that
by itself; a new producer gets a new producer id. Until the replacement has connected, requests
are refused at once instead of each waiting out the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from infersight.binding import to_kafka_headers
from infersight.config import IngestConfig, KafkaConfig
from infersight.ingest.errors import IngestError
from infersight.kafkaclient import aiokafka_options
from infersight.records import RawEvent

log = logging.getLogger("infersight.ingest")

_RECONNECT_SECONDS = 1.0
_PROBE_SECONDS = 2.0


class KafkaPublisher:
    """The ingest's one producer, with a bound on events waiting for the broker."""

    def __init__(self, kafka: KafkaConfig, ingest: IngestConfig) -> None:
        self.topic = kafka.topics.payloads
        self.timeout = ingest.kafka_timeout_seconds
        self.max_in_flight = ingest.max_in_flight
        self.in_flight = 0
        self._options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": ingest.linger_ms,
            "max_request_size": kafka.max_message_bytes,
            "request_timeout_ms": int(self.timeout * 1000),
            **aiokafka_options(kafka),
        }
        self._producer: AIOKafkaProducer | None = None
        self._replacing: asyncio.Task[None] | None = None
        self._ready_at = 0.0

    async def start(self) -> None:
        """Create and start the producer; if Kafka is away, keep trying in the background."""
        try:
            self._producer = await self._connect()
        except KafkaError as exc:
            log.warning("Kafka is unreachable (%s); not ready until it answers", exc)
            self._replacing = asyncio.create_task(self._reconnect(None))

    async def stop(self) -> None:
        if self._replacing is not None:
            self._replacing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replacing
        if self._producer is not None:
            await self._producer.stop()

    async def _connect(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._options)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def publish(self, events: Sequence[RawEvent]) -> None:
        """Send the events and wait until Kafka has acknowledged every one of them."""
        producer = self._producer
        if producer is None or self._replacing is not None:
            raise IngestError("kafka_unavailable", "Kafka is unreachable; reconnecting")
        if self.in_flight + len(events) > self.max_in_flight:
            raise IngestError("kafka_unavailable", f"{self.in_flight} events already wait for Kafka")
        self.in_flight += len(events)
        try:
            async with asyncio.timeout(self.timeout):
                await self._send_all(producer, events)
        except (KafkaError, TimeoutError) as exc:
            self._replace(producer)
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise IngestError("kafka_unavailable", f"Kafka did not acknowledge the event: {reason}") from exc
        finally:
            self.in_flight -= len(events)
        self._ready_at = time.monotonic()

    async def _send_all(self, producer: AIOKafkaProducer, events: Sequence[RawEvent]) -> None:
        deliveries = [
            await producer.send(
                self.topic,
                value=event.data,
                key=event.model.partition_key.encode(),
                headers=to_kafka_headers(event.attributes, event.content_encoding),
            )
            for event in events
        ]
        for delivery in deliveries:
            await delivery

    def _replace(self, failed: AIOKafkaProducer) -> None:
        if self._replacing is None and self._producer is failed:
            log.warning("Kafka failed to acknowledge; replacing the producer")
            self._replacing = asyncio.create_task(self._reconnect(failed))

    async def _reconnect(self, failed: AIOKafkaProducer | None) -> None:
        # Stopping the failed producer fails its pending deliveries; their requests got 503.
        if failed is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await failed.stop()
        while True:
            try:
                self._producer = await self._connect()
            except KafkaError:
                await asyncio.sleep(_RECONNECT_SECONDS)
                continue
            self._replacing = None
            log.warning("Kafka reachable again; producing resumed")
            return

    async def ready(self) -> bool:
        """True when a broker answered recently, or answers a metadata request now."""
        if self._producer is None or self._replacing is not None:
            return False
        if time.monotonic() - self._ready_at < 1.0:
            return True
        try:
            async with asyncio.timeout(_PROBE_SECONDS):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError):
            return False
        self._ready_at = time.monotonic()
        return True
