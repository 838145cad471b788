"""The Faust application every ``infersight worker`` process runs.

One consumer group reads ``infersight.payloads`` and any extra topics that already carry
CloudEvents. Events arrive in batches (``worker.batch_size`` events or ``worker.batch_seconds``,
whichever comes first); each inference request or response is decoded and offered to the pending
table, which gives back the complete records; a timer hands on halves whose partner never came.
Records go to the detectors, which score whole batches in a thread beside the event loop;
their detections go to the detections topic and the reply URL, and the scored records to the
sinks. Offsets are committed only after all of that returned and the producer (detections, dead
letters, table changelog) has flushed, so a worker killed at any point loses nothing: the batch
is read again.

Everything about one model shares a key and so a partition, and the pending table's changelog is
partitioned the same way; when a rebalance moves a partition, its pending halves move with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import faust
from faust.types import TP, EventT
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from infersight.binding import from_kafka_record
from infersight.config import Settings
from infersight.detectors.runner import DetectorRunner
from infersight.eventformat import InvalidEvent
from infersight.kafkaclient import faust_credentials
from infersight.privacy import TrafficRules
from infersight.records import (
    FEEDBACK,
    SELDON_FEEDBACK,
    Detection,
    Half,
    InferenceRecord,
    Payload,
    RawEvent,
    event_type_label,
    half_of,
)
from infersight.sinks.detections import to_kafka
from infersight.sinks.reply import ReplyPoster
from infersight.sinks.store import SqlStore, StoreMetrics
from infersight.streams.decode import DecodeError, decode_body
from infersight.streams.metrics import StreamMetrics
from infersight.streams.offsets import OffsetGaps
from infersight.streams.pairing import Pairer, partition_of
from infersight.streams.serialize import record_to_json

log = logging.getLogger("infersight.worker")

T = TypeVar("T")
FEEDBACK_TYPES = frozenset({FEEDBACK, SELDON_FEEDBACK})
#: Waits between attempts to write a batch the store refused (it is retried until it goes in).
STORE_RETRY_SECONDS = (0.5, 1, 2, 5, 10, 30)
REASON_HEADER = "infersight-deadletter-reason"
ORIGIN_HEADER = "infersight-deadletter-origin"


class PendingTable(faust.Table[bytes, bytes]):
    """A table whose changelog partition is the source partition written into each key.

    Faust takes the partition from the event being processed, which does not exist in a timer and
    is ambiguous inside ``take_events`` batches (faust #497); the key already says it.
    """

    def partition_for_key(self, key: Any) -> int | None:
        return partition_of(key)


def decode_event(event: RawEvent) -> Payload:
    return decode_body(event.data, event.attributes.get("datacontenttype"), event.content_encoding)


def _header_pairs(
    headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None,
) -> list[tuple[str, bytes]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _metrics_view(registry: CollectorRegistry) -> type[View]:
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway.
            return self.bytes(
                generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split("; charset")[0]
            )

    return MetricsView


class StreamWorker:
    """Builds the Faust app and holds what its agent and timer share."""

    def __init__(
        self,
        settings: Settings,
        partitions: int,
        runner: DetectorRunner | None = None,
        store: SqlStore | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = StreamMetrics(self.registry)
        self.runner = runner
        self.store = store
        self.store_metrics = StoreMetrics(self.registry) if store is not None else None
        if store is not None and self.store_metrics is not None:
            self.store_metrics.set_accuracy(store.accuracy())
        # One thread each: detectors are not thread-safe, and their order of calls is their state;
        # the store writes one batch at a time, in order.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detectors")
        self.store_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        detections = settings.detections
        # Events from KafkaSink or Seldon topics never passed the ingest's sampling and redaction.
        self.rules = TrafficRules(settings.models, settings.ingest.max_body_bytes)
        self.reply = (
            ReplyPoster(
                detections.reply_url,
                self.registry,
                timeout_seconds=detections.reply_timeout_seconds,
                retries=detections.reply_retries,
                queue_size=detections.reply_queue_size,
                give_up=self._dead_letter_detection,
            )
            if detections.reply_url
            else None
        )
        config = settings.worker
        kafka = settings.kafka
        self.app = faust.App(
            config.group_id,
            broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
            broker_credentials=faust_credentials(kafka),
            store="memory://",
            datadir=str(config.state_dir),
            topic_partitions=partitions,
            topic_replication_factor=kafka.replication_factor,
            table_standby_replicas=0,
            consumer_auto_offset_reset="earliest",
            broker_rebalance_timeout=config.rebalance_timeout_seconds,
            broker_session_timeout=config.rebalance_timeout_seconds,
            broker_heartbeat_interval=min(3.0, config.rebalance_timeout_seconds / 4),
            broker_commit_interval=1.0,
            producer_acks=-1,
            web_enabled=config.metrics_port > 0,
            web_bind=config.metrics_host,
            web_port=config.metrics_port,
            web_in_thread=False,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.source = self.app.topic(kafka.topics.payloads, *config.extra_topics, value_serializer="raw")
        self.source_topics = {kafka.topics.payloads, *config.extra_topics}
        self.deadletter = self.app.topic(kafka.topics.deadletter, value_serializer="raw")
        self.detections = self.app.topic(kafka.topics.detections, value_serializer="raw")
        self.records_topic = (
            self.app.topic(config.records_topic, value_serializer="raw") if config.records_topic else None
        )
        self.table = self.app.tables.add(
            PendingTable(
                self.app,
                name="pending-halves",
                default=None,
                partitions=partitions,
                key_type=bytes,
                value_type=bytes,
                help="Requests and responses waiting for their other half.",
            )
        )
        self.pairer = Pairer(
            cast("MutableMapping[bytes, bytes]", self.table),
            decode_event,
            config.pairing_timeout_seconds,
            dedupe_seconds=config.dedupe_seconds,
            dedupe_max_keys=config.dedupe_max_keys,
            on_duplicate=self.metrics.duplicate,
        )
        self.app.agent(self.source, name="pair")(self._pair_agent)
        tick = min(1.0, config.pairing_timeout_seconds / 4)
        self.app.timer(interval=tick, name="expire-pending")(self._expire)
        if runner is not None and not runner.empty:
            self.app.timer(interval=1.0, name="close-windows")(self._close_windows)
            self.app.timer(interval=detections.state_save_seconds, name="save-detector-state")(
                self._save_states
            )
            # mode's Signal.connect is typed for plain functions; bound coroutine methods work the same.
            self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
            self.app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        self._assigned: set[TP] = set()
        self.offset_gaps = OffsetGaps()
        if self.reply is not None:
            self.app.task(self._start_reply)
        if config.metrics_port > 0:
            self.app.page("/metrics")(_metrics_view(self.registry))

    async def _pair_agent(self, stream: Any) -> None:  # a faust Stream; StreamT does not declare take_events
        config = self.settings.worker
        async for events in stream.take_events(config.batch_size, within=config.batch_seconds):
            await self._read_skipped_again(events)
            halves: list[tuple[int, Half]] = []
            others: list[RawEvent] = []
            now = time.time()
            for event in events:
                message = event.message
                try:
                    received = from_kafka_record(_header_pairs(message.headers), message.value)
                    self.metrics.observe_lag(received)
                    raw = self.rules.apply(received)
                    if raw is None:
                        self.metrics.sampled_out(received)
                        continue
                    if half_of(raw) is None:
                        others.append(raw)
                        self.metrics.other_events.labels(event_type_label(raw.type)).inc()
                        continue
                    halves.append(
                        (message.partition, Half(event=raw, payload=decode_event(raw), received_at=now))
                    )
                except InvalidEvent as exc:
                    await self._dead_letter(event, "invalid_event", str(exc))
                except DecodeError as exc:
                    await self._dead_letter(event, "undecodable_payload", str(exc))
            await self._hand_on(self.pairer.pair(halves), others)

    async def _read_skipped_again(self, events: Sequence[EventT[Any]]) -> None:
        """Seek back to offsets the consumer passed over without handing them to us (see offsets.py)."""
        generation = self.app.consumer_generation_id
        offsets = [(event.message.tp, event.message.offset) for event in events]
        for tp, offset in self.offset_gaps.check(generation, offsets):
            log.warning(
                "offset %s of %s/%s never arrived; reading from it again", offset, tp.topic, tp.partition
            )
            self.metrics.rereads.inc()
            await self.app.consumer.seek(tp, offset)

    async def _expire(self) -> None:
        actives = {
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic in self.source_topics
        }
        records = self.pairer.expire(time.time(), actives)
        self.metrics.pending.set(len(self.pairer.table))
        if records:
            await self._hand_on(records, [])

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, call, *args)

    async def _store(
        self,
        records: Sequence[InferenceRecord] = (),
        detections: Sequence[Detection] = (),
        feedback: Sequence[RawEvent] = (),
    ) -> None:
        """Write to the store, retrying until it takes the batch: offsets wait, nothing is lost."""
        if self.store is None or self.store_metrics is None or not (records or detections or feedback):
            return
        loop = asyncio.get_running_loop()
        for attempt in range(1_000_000):
            started = time.perf_counter()
            try:
                counts = await loop.run_in_executor(
                    self.store_executor, self.store.write, records, detections, feedback
                )
            except Exception as exc:  # SQLAlchemy and driver errors: the database is away or refused
                delay = STORE_RETRY_SECONDS[min(attempt, len(STORE_RETRY_SECONDS) - 1)]
                self.metrics.store_errors.inc()
                log.warning("store write failed (%s: %s); retrying in %ss", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.store_metrics.observe(counts, time.perf_counter() - started)
            return

    async def _hand_on(self, records: Sequence[InferenceRecord], others: Sequence[RawEvent]) -> None:
        for record in records:
            self.metrics.record(record)
        if not records and not others:
            return
        detections: list[Detection] = []
        if self.runner is not None and records:
            records, detections = await self._in_thread(self.runner.process, records)
        await self.publish_detections(detections)
        feedback = [event for event in others if event.type in FEEDBACK_TYPES]
        await self._store(records, detections, feedback)
        await self.publish_records(records, others)

    async def publish_detections(self, detections: Sequence[Detection]) -> None:
        """Each detection as a CloudEvent on the detections topic, and to the reply URL when set."""
        for detection in detections:
            message = to_kafka(detection)
            key = message.key.encode() if isinstance(message.key, str) else message.key
            await self.detections.send(key=key, value=message.value, headers=list(message.headers.items()))
        if self.reply is not None:
            self.reply.submit(list(detections))

    async def _dead_letter_detection(self, detection: Detection, reason: str) -> None:
        """A detection the reply URL never took: on the dead-letter topic, as its CloudEvent."""
        message = to_kafka(detection)
        key = message.key.encode() if isinstance(message.key, str) else message.key
        headers = [*message.headers.items(), (REASON_HEADER, f"reply_failed: {reason}".encode())]
        await self.deadletter.send(key=key, value=message.value, headers=headers)
        self.metrics.deadletters.labels("reply_failed").inc()

    async def _close_windows(self) -> None:
        assert self.runner is not None
        detections = await self._in_thread(self.runner.tick)
        await self.publish_detections(detections)
        await self._store(detections=detections)

    async def _save_states(self) -> None:
        assert self.runner is not None
        await self._in_thread(self.runner.save_states)

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Drop detector windows and state when partitions went elsewhere: their models may have too.

        Faust revokes everything on each rebalance and assigns anew; only a worker that lost
        partitions lets go, saving online state first for whoever takes the models on.
        """
        assert self.runner is not None
        assigned: set[TP] = args[0]
        sources = {tp for tp in assigned if tp.topic in self.source_topics}
        if self._assigned - sources:
            await self._in_thread(self.runner.forget)
        self._assigned = sources

    async def _on_shutdown(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        if self.runner is not None:
            await self._in_thread(self.runner.save_states)
        if self.reply is not None:
            await self.reply.stop()
        if self.store is not None:
            self.store.close()

    async def _start_reply(self) -> None:
        assert self.reply is not None
        self.reply.start()

    async def _dead_letter(self, event: EventT[Any], reason: str, detail: str) -> None:
        message = event.message
        origin = f"{message.topic}/{message.partition}/{message.offset}"
        headers = [
            *_header_pairs(message.headers),
            (REASON_HEADER, f"{reason}: {detail}".encode()),
            (ORIGIN_HEADER, origin.encode()),
        ]
        await self.deadletter.send(key=message.key, value=message.value, headers=headers)
        self.metrics.deadletters.labels(reason).inc()
        log.warning(
            "dead letter from %s/%s/%s: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
            detail,
        )

    async def publish_records(self, records: Sequence[InferenceRecord], others: Sequence[RawEvent]) -> None:
        """Records as JSON on the records topic, when one is configured, to watch what the workers make."""
        if self.records_topic is None:
            return
        for record in records:
            await self.records_topic.send(
                key=record.model.partition_key.encode(), value=record_to_json(record)
            )
