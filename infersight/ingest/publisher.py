"""Produce events to Kafka and answer only once the broker has acknowledged them.

The producer is librdkafka's (confluent-kafka), idempotent with ``acks=all``: it costs a fifth
of the CPU per event of a pure-Python producer, and it recovers by itself from the sequence
gaps a broker outage leaves behind. Its delivery reports arrive on a polling thread and are
handed to the event loop in batches.

A request waits at most ``ingest.kafka_timeout_seconds`` for Kafka. Past that, while every
broker is down, or when too many events already wait for Kafka, its events go to the spool on
local disk (:mod:`~infersight.ingest.spool`) and are answered once they are there; a drain task
moves them to Kafka as soon as it answers. Only when the spool is off or full is a request
refused with 503, acknowledging nothing. An event whose wait timed out may still reach Kafka
from the producer's queue as well as from the spool: the store is idempotent on the event
identity for that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from infersight.binding import to_kafka_headers
from infersight.config import IngestConfig, KafkaConfig
from infersight.ingest.errors import IngestError
from infersight.ingest.spool import Spool, SpoolFull
from infersight.kafkaclient import librdkafka_config
from infersight.records import RawEvent

log = logging.getLogger("infersight.ingest")

_POLL_SECONDS = 0.05
_PROBE_SECONDS = 2.0
_RECONNECT_SECONDS = 1.0
#: Events produced from the spool at a time; each chunk is removed once Kafka acknowledged it.
_DRAIN_CHUNK = 5000
_IDLE_DRAIN_SECONDS = 0.01
_ORPHAN_SCAN_SECONDS = 5.0
#: How often waits past their deadline are failed; a wait lasts at most this much past the timeout.
_EXPIRY_TICK_SECONDS = 0.05


class Acks:
    """Kafka's acknowledgements of one group of events: ``done`` once all came, or the first error."""

    __slots__ = ("done", "waiting")

    def __init__(self, done: asyncio.Future[None], waiting: int) -> None:
        self.done = done
        self.waiting = waiting


Delivery = tuple[Acks, KafkaError | None]
Headers = list[tuple[str, str | bytes | None]]


class KafkaPublisher:
    """The ingest's one producer, with a bound on events waiting for the broker."""

    def __init__(self, kafka: KafkaConfig, ingest: IngestConfig) -> None:
        self.topic = kafka.topics.payloads
        self.timeout = ingest.kafka_timeout_seconds
        self.max_in_flight = ingest.max_in_flight
        self.in_flight = 0
        self._config: dict[str, Any] = {
            **librdkafka_config(kafka),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": ingest.linger_ms,
            "message.max.bytes": kafka.max_message_bytes,
            "message.timeout.ms": int(self.timeout * 1000),
            # Java clients (Knative KafkaSink, Kafka Streams) and aiokafka hash keys with murmur2:
            # one model lands in the same partition whoever wrote its events.
            "partitioner": "murmur2_random",
            "error_cb": self._on_error,
        }
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reports: list[Delivery] = []
        #: Waits for acknowledgements in the order they began, so in the order of their deadlines.
        self._waits: deque[tuple[float, Acks]] = deque()
        self._expiry: asyncio.Task[None] | None = None
        self._polling = False
        self._poller: threading.Thread | None = None
        self._all_down = False
        self._watch: asyncio.Task[None] | None = None
        self._ready_at = 0.0
        spool = ingest.spool
        self._spool_config = spool if spool.enabled else None
        self.spool: Spool | None = None
        self._drain: asyncio.Task[None] | None = None
        self._orphans: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the producer and its polling thread; until a broker answers, readiness says no."""
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self._config)
        self._polling = True
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)
        self._poller.start()
        self._watch_until_reachable()
        if self._spool_config is not None:
            self.spool = Spool(self._spool_config.path, self._spool_config.max_bytes)
            if self.spool.events:
                log.info("the spool holds %d events from stopped ingests; draining", self.spool.events)
                self._start_drain()
            self._orphans = asyncio.create_task(self._watch_orphans())

    async def stop(self) -> None:
        """Flush what waits for Kafka; what the spool still holds stays on disk for the next ingest."""
        for task in (self._watch, self._orphans, self._drain, self._expiry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, self.timeout)
        self._polling = False
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join)
        if self.spool is not None:
            if self.spool.events:
                log.warning("stopping with %d events spooled in %s", self.spool.events, self.spool.folder)
            self.spool.close()

    def _poll(self) -> None:
        """Serve delivery reports; runs on its own thread because librdkafka calls back on the poller's."""
        assert self._producer is not None and self._loop is not None
        while self._polling:
            self._producer.poll(_POLL_SECONDS)
            if self._reports:
                reports, self._reports = self._reports, []
                with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                    self._loop.call_soon_threadsafe(self._settle, reports)

    def _delivered(self, acks: Acks, error: KafkaError | None, message: Message) -> None:
        self._reports.append((acks, error))

    def _settle(self, reports: list[Delivery]) -> None:
        for acks, error in reports:
            done = acks.done
            if done.done():  # its request already timed out, or an event of it failed
                continue
            if error is not None:
                done.set_exception(KafkaException(error))
                continue
            acks.waiting -= 1
            if not acks.waiting:
                done.set_result(None)
        self._ready_at = time.monotonic()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("every Kafka broker is unreachable; refusing events until one answers")
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._watch_until_reachable)
        elif error.fatal():
            log.error("the Kafka producer failed for good: %s", error.str())
        else:
            log.warning("Kafka: %s", error.str())

    def _watch_until_reachable(self) -> None:
        self._all_down = True
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._probe_until_reachable())

    async def _probe_until_reachable(self) -> None:
        while not await self._answers():  # noqa: ASYNC110 - polling a remote broker, no local event to wait on
            await asyncio.sleep(_RECONNECT_SECONDS)
        if self._all_down:
            log.info("Kafka answers; taking events")
        self._all_down = False

    async def _answers(self) -> bool:
        assert self._producer is not None
        try:
            await asyncio.to_thread(self._producer.list_topics, self.topic, _PROBE_SECONDS)
        except KafkaException:
            return False
        self._ready_at = time.monotonic()
        return True

    async def publish(self, events: Sequence[RawEvent]) -> None:
        """Return once Kafka has acknowledged every event, or, while it cannot, the spool holds them.

        While this process's spool file holds events, new ones queue behind them there, so that
        what one ingest takes reaches Kafka in the order it came.
        """
        if len(events) > self.max_in_flight:
            # No retry would ever fit it: the client must split the batch, so 413 and not 503.
            raise IngestError("too_large", f"{len(events)} events exceed the limit of {self.max_in_flight}")
        spool = self.spool
        if spool is not None and (self._all_down or spool.own_events):
            await self._to_spool(spool, events)
            return
        try:
            await self._produce(events)
        except IngestError:
            if spool is None:
                raise
            await self._to_spool(spool, events)

    async def _produce(self, events: Sequence[RawEvent], *, bounded: bool = True) -> None:
        """Produce and wait for every acknowledgement; ``kafka_unavailable`` when Kafka cannot take them."""
        if self._producer is None or self._all_down:
            raise IngestError("kafka_unavailable", "Kafka is unreachable")
        if bounded and self.in_flight + len(events) > self.max_in_flight:
            raise IngestError("kafka_unavailable", f"{self.in_flight} events already wait for Kafka")
        assert self._loop is not None
        acks = Acks(self._loop.create_future(), len(events))
        delivered = partial(self._delivered, acks)
        produce = self._producer.produce
        self.in_flight += len(events)
        try:
            for event in events:
                produce(
                    self.topic,
                    value=event.data,
                    key=event.model.partition_key,
                    headers=cast(Headers, to_kafka_headers(event.attributes, event.content_encoding)),
                    on_delivery=delivered,
                )
            self._wait_for(acks)
            await acks.done
        except BufferError as exc:
            raise IngestError("kafka_unavailable", "the producer's queue is full") from exc
        except (KafkaException, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc.args[0].str())
            raise IngestError("kafka_unavailable", f"Kafka did not acknowledge the event: {reason}") from exc
        finally:
            self.in_flight -= len(events)

    def _wait_for(self, acks: Acks) -> None:
        """Give ``acks`` its deadline; one timer for every wait costs less per request than one each."""
        assert self._loop is not None
        self._waits.append((self._loop.time() + self.timeout, acks))
        if self._expiry is None or self._expiry.done():
            self._expiry = asyncio.create_task(self._expire_waits())

    async def _expire_waits(self) -> None:
        """Fail the waits Kafka has not acknowledged by their deadline, as long as any wait."""
        assert self._loop is not None
        waits = self._waits
        while waits:
            now = self._loop.time()
            while waits and (waits[0][1].done.done() or waits[0][0] <= now):
                _, acks = waits.popleft()
                if not acks.done.done():
                    acks.done.set_exception(TimeoutError())
            await asyncio.sleep(_EXPIRY_TICK_SECONDS)

    async def _to_spool(self, spool: Spool, events: Sequence[RawEvent]) -> None:
        """Keep ``events`` on disk for the drain; 503 only when the spool cannot take them either."""
        try:
            await spool.append(events)
        except SpoolFull as exc:
            raise IngestError("kafka_unavailable", f"Kafka cannot take the event and {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            log.error("the spool could not write to %s: %s", spool.folder, exc)
            raise IngestError(
                "kafka_unavailable", f"Kafka cannot take the event and the spool failed: {exc}"
            ) from exc
        self._start_drain()

    def _start_drain(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_spool())

    async def _drain_spool(self) -> None:
        """Move the spool's events to Kafka, oldest first, as soon as and as long as it takes them.

        Each chunk is removed from the spool only once Kafka acknowledged all of it; a chunk
        produced while the ingest is killed is produced again at the next start, which the
        store's idempotent writes keep to one row.
        """
        spool = self.spool
        assert spool is not None
        while spool.events:
            if self._all_down:
                await asyncio.sleep(_RECONNECT_SECONDS)
                continue
            moved = 0
            for file in (*spool.orphans, spool.own):
                chunk = await spool.read(file, _DRAIN_CHUNK)
                if not chunk:
                    continue
                try:
                    await self._produce([item.event for item in chunk], bounded=False)
                except IngestError as exc:
                    log.warning("draining the spool waits for Kafka: %s", exc.message)
                    await asyncio.sleep(_RECONNECT_SECONDS)
                    break
                await spool.remove(file, chunk)
                moved += len(chunk)
            if not moved:
                await asyncio.sleep(_IDLE_DRAIN_SECONDS)  # rows still being written
        log.info("the spool is empty; events go straight to Kafka again")

    async def _watch_orphans(self) -> None:
        """Pick up the spool files of ingests that stopped with events in them."""
        assert self.spool is not None
        while True:
            if self.spool.adopt_orphans():
                log.info("draining the spool files of stopped ingests: %d events", self.spool.events)
                self._start_drain()
            await asyncio.sleep(_ORPHAN_SCAN_SECONDS)

    async def kafka_ready(self) -> bool:
        """True when Kafka acknowledged or answered recently, or answers a metadata request now."""
        if self._producer is None or self._all_down:
            return False
        if time.monotonic() - self._ready_at < 1.0:
            return True
        return await self._answers()

    def spool_can_take(self) -> bool:
        """Whether the spool is on and has room left."""
        return self.spool is not None and self.spool.bytes < self.spool.max_bytes
