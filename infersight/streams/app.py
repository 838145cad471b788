"""The quixstreams Application every ``infersight worker`` runs, wired together; nothing else lives here.

One consumer group reads ``infersight.payloads`` (and ``worker.extra_topics``). Each record is
read into an event (:mod:`~infersight.streams.source`), its body decoded once
(:mod:`~infersight.streams.decode`) and offered to pairing (:mod:`~infersight.streams.pairing`),
whose waiting halves live in the engine's state under the model's key: RocksDB on local disk,
its changelog in Kafka, so a restarted or rebalanced worker goes on exactly. A record whose key
is not its model's (extra topics, Seldon's Kafka logger, a KafkaSink that sets no key) is first
written back to the payloads topic under that key, so both halves of an inference meet in one
partition and one state.

The engine's checkpoint is the one commit order: every ``worker.batch_seconds`` (or
``worker.batch_size`` records) it flushes our hand-off (:mod:`~infersight.streams.batches`:
detectors, then every sink: store, detections topic, reply URL, records topic), then produces
the pairing state's changelog, flushes the producer (detections, dead letters, re-keyed records,
changelog), and only then commits the offsets, in a Kafka transaction with
``worker.processing_guarantee: exactly-once``. A sink that pushes back pauses the partitions and
the batch is read again; any other exception stops the worker without committing, to be
restarted by its supervisor.

Expiry of halves whose partner never came, time-bounded drift windows and saving online detector
state run from the engine's run loop between records (its periodic tasks), inside the same
checkpoint as the records.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry
from quixstreams import Application
from quixstreams.checkpointing.exceptions import CheckpointConsumerCommitError
from quixstreams.context import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig
from quixstreams.sinks import BaseSink, SinkBackpressureError
from quixstreams.state import State
from quixstreams.state.rocksdb import RocksDBOptions, RocksDBStorePartition

from infersight.config import Settings, WorkerConfig
from infersight.detectors.runner import DetectorRunner
from infersight.detectors.windows import Window, decode_window, encode_window
from infersight.kafkaclient import librdkafka_config
from infersight.metriclabels import RecentRevisions
from infersight.privacy import TrafficRules
from infersight.records import ModelRef
from infersight.sinks.base import Backpressure, Headers, Sink
from infersight.sinks.deadletter import DeadLetters
from infersight.sinks.reply import ReplySink
from infersight.sinks.store import SqlStore
from infersight.sinks.store.sink import StoreSink
from infersight.sinks.topics import DetectionsTopic, RecordsTopic
from infersight.statecodec import frame
from infersight.streams.batches import HandOff
from infersight.streams.decode import decode_event
from infersight.streams.health import HealthServer
from infersight.streams.metrics import StreamMetrics
from infersight.streams.pairing import Pairer
from infersight.streams.source import Source, is_feedback

log = logging.getLogger("infersight.worker")

#: Commit errors of a member the group no longer knows: it joins again instead of stopping.
LEFT_BEHIND = frozenset(
    {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS}
)
#: How long to wait before asking a broker that went away for a topic again.
TOPIC_RETRY_SECONDS = 1.0
#: How often the run loop expires halves, closes time windows and flushes an idle hand-off.
TICK_SECONDS = 0.2
#: Between a state key's prefix (the Kafka key) and the key itself, as the engine stores them.
PREFIX_SEPARATOR = b"|"
#: Appended to a model's key for the state of its open drift windows (no Kafka key holds a NUL).
WINDOWS_PREFIX = b"\x00windows"
#: The worker's own state, beside the models' (a NUL again: it is no model's key).
WORKER_PREFIX = b"\x00worker"


#: Allocations between two collections of the youngest generation (Python's default is 700).
GC_THRESHOLD = 20_000


def settle_garbage_collector() -> None:
    """Keep the garbage collector from rescanning what start-up made, for every event.

    Every event allocates a few dozen objects, and with Python's default thresholds the oldest
    generation, which holds all that the detector libraries (TensorFlow, alibi-detect) left at
    import, was rescanned every few thousand events: 12-18 % of the worker's CPU per event in
    ``bench/worker.py``. Start-up objects are frozen out of collection, and the youngest
    generation is collected less often; reference cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


class WorkerFailed(Exception):
    """The worker stopped on an exception; what it had not committed is read again at restart."""


class HandOffSink(BaseSink):
    """The engine's view of our hand-off: flushed first in every checkpoint."""

    def __init__(self, hand_off: HandOff, pairer: Pairer) -> None:
        super().__init__(on_client_connect_success=lambda: None)
        self.hand_off = hand_off
        self.pairer = pairer

    def add(self, *args: Any, **kwargs: Any) -> None:
        pass  # records reach the hand-off directly; this sink only takes part in the checkpoint

    def flush(self) -> None:
        try:
            self.hand_off.flush()
        except Backpressure as exc:
            self.on_paused()
            raise SinkBackpressureError(retry_after=exc.retry_after) from exc
        self.pairer.commit(time.time())

    def on_paused(self) -> None:
        """The checkpoint is dropped, state included: undo what memory kept of it."""
        self.pairer.rollback()
        if self.hand_off.runner is not None:
            self.hand_off.runner.keep_all_windows()


class EngineWindows:
    """Open drift windows in the engine's state, beside the pending halves of their model.

    They are written in the checkpoint that holds the records they were filled with, so a
    worker that takes the model on (after a restart or a rebalance) finds each window as it was
    at the last commit, and the records after it are read again into it.
    """

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker

    def load(self, model: ModelRef, detector: str) -> Window | None:
        state = self.worker.window_state(model)
        blob = state.get_bytes(_window_key(model, detector)) if state is not None else None
        return decode_window(blob) if blob is not None else None

    def save(self, model: ModelRef, detector: str, window: Window | None) -> None:
        state = self.worker.window_state(model)
        if state is None:
            return  # the model's partition went elsewhere: its new worker has the window
        if window is None:
            state.delete(_window_key(model, detector))
        else:
            state.set_bytes(_window_key(model, detector), encode_window(window))


def state_options(config: WorkerConfig) -> RocksDBOptions:
    """The state's RocksDB options: its memory bounded by the worker's settings, not RocksDB's."""
    return RocksDBOptions(
        write_buffer_size=config.state_write_buffer_mb << 20,
        max_write_buffer_number=2,
        block_cache_size=config.state_cache_mb << 20,
    )


def _window_key(model: ModelRef, detector: str) -> bytes:
    return f"{detector}|{model.component}|{model.endpoint}".encode()


class StreamWorker:
    """One worker process: the Application, its dataframes and what their callbacks share."""

    def __init__(
        self,
        settings: Settings,
        runner: DetectorRunner | None = None,
        store: SqlStore | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        config = settings.worker
        kafka = settings.kafka
        self.registry = registry or CollectorRegistry()
        # One set of recent revisions for the worker's and its detectors' metrics alike.
        revisions = runner.metrics.revisions if runner is not None else None
        self.metrics = StreamMetrics(
            self.registry, revisions or RecentRevisions(config.max_revisions_in_metrics)
        )
        self.payloads = kafka.topics.payloads
        self.deadletters = DeadLetters(kafka.topics.deadletter, self.publish, self.registry)
        self.source = Source(
            TrafficRules(settings.models, settings.ingest.max_body_bytes), self.deadletters, self.metrics
        )
        self.runner = runner if runner is not None and not runner.empty else None
        if self.runner is not None:
            self.runner.windows = EngineWindows(self)
        # The partition each model's records come from, to find its state outside a record.
        self._partition_of: dict[bytes, int] = {}
        self.pairer = Pairer(
            decode_event,
            config.pairing_timeout_seconds,
            dedupe_seconds=config.dedupe_seconds,
            dedupe_max_keys=config.dedupe_max_keys,
            on_duplicate=self.metrics.duplicate,
        )
        self.reply: ReplySink | None = None
        self.hand_off = HandOff(self._sinks(store), self.metrics, self.runner)
        self.app, self.dataframe = self._engine()
        self._save_states_on_revoke()
        self._state_store = self._store()
        self.health = None
        if config.metrics_port > 0:
            try:
                self.health = HealthServer(
                    config.metrics_host, config.metrics_port, self.registry, self.ready
                )
            except OSError as exc:
                where = f"{config.metrics_host}:{config.metrics_port}"
                raise WorkerFailed(
                    f"cannot serve /metrics on {where} (worker.metrics_port): {exc.strerror}"
                ) from exc
        self._running = False
        self._next_tick = 0.0
        self._next_save = time.monotonic() + settings.detections.state_save_seconds
        self._next_reload = time.monotonic() + settings.detections.reload_seconds
        # The state partition each assigned partition's index was built from.
        self._indexed: dict[int, Any] = {}
        # The partitions last said to be held, in the log.
        self._held: set[int] = set()
        self.store = store

    def _engine(self) -> tuple[Application, StreamingDataFrame]:
        """The Application and the payloads' dataframe, wired to our callbacks and hand-off.

        Wiring asks the broker for the topics (and creates the changelog topic): a broker that
        went away since start-up is waited for, with a fresh Application each time.
        """
        while True:
            try:
                return self._wire(self._application())
            except KafkaException as exc:
                log.warning("waiting for Kafka at %s (%s)", self.settings.kafka.bootstrap_servers, exc)
                time.sleep(TOPIC_RETRY_SECONDS)

    def _application(self) -> Application:
        config, kafka = self.settings.worker, self.settings.kafka
        connection = librdkafka_config(kafka)
        return Application(
            broker_address=ConnectionConfig.from_librdkafka_dict(connection, ignore_extras=True),
            consumer_group=config.group_id,
            auto_offset_reset="earliest",
            commit_interval=config.batch_seconds,
            commit_every=config.batch_size,
            consumer_extra_config={
                "session.timeout.ms": int(config.rebalance_timeout_seconds * 1000),
                "heartbeat.interval.ms": int(min(3.0, config.rebalance_timeout_seconds / 4) * 1000),
                "fetch.queue.backoff.ms": 10,
            },
            producer_extra_config={"message.max.bytes": kafka.max_message_bytes, "linger.ms": 5},
            state_dir=config.state_dir,
            rocksdb_options=state_options(config),
            processing_guarantee=config.processing_guarantee,
            consumer_poll_timeout=TICK_SECONDS,
            loglevel=None,
            # The worker waits out a broker outage instead of exiting (0 turns the engine's limit off).
            broker_availability_timeout=0,
        )

    def _wire(self, app: Application) -> tuple[Application, StreamingDataFrame]:
        kafka = self.settings.kafka
        app._sink_manager.register(HandOffSink(self.hand_off, self.pairer))
        topic_config = TopicConfig(
            num_partitions=kafka.partitions, replication_factor=kafka.replication_factor
        )
        source = app.topic(
            self.payloads, key_deserializer="bytes", value_deserializer="bytes", config=topic_config
        )
        dataframe = app.dataframe(source)
        dataframe.update(self._on_payload, stateful=True, metadata=True)
        for name in self.settings.worker.extra_topics:
            extra = app.topic(name, key_deserializer="bytes", value_deserializer="bytes")
            app.dataframe(extra).update(self._on_extra, metadata=True)
        app._dataframe_registry.register_periodic_task(self._tick)
        return app, dataframe

    def _sinks(self, store: SqlStore | None) -> list[Sink]:
        """The sinks in the order a batch reaches them: the store first, then what others read."""
        settings = self.settings
        sinks: list[Sink] = []
        if store is not None:
            sinks.append(StoreSink(store, self.registry, self.deadletters))
        sinks.append(DetectionsTopic(settings.kafka.topics.detections, self.publish))
        detections = settings.detections
        if detections.reply_url:
            self.reply = ReplySink(
                detections.reply_url,
                self.registry,
                self.deadletters,
                timeout_seconds=detections.reply_timeout_seconds,
                retries=detections.reply_retries,
                queue_size=detections.reply_queue_size,
            )
            sinks.append(self.reply)
        if settings.worker.records_topic:
            sinks.append(RecordsTopic(settings.worker.records_topic, self.publish))
        return sinks

    def _save_states_on_revoke(self) -> None:
        """Save online detector state when partitions go, after the engine's last commit for them.

        The engine commits the checkpoint in its revoke callback; saving right after it, still
        inside the callback, means the worker that gets the partitions next (only once every
        member has revoked) restores a state that counted every instance committed.
        """
        revoke = self.app._on_revoke

        def on_revoke(consumer: Any, partitions: Any) -> None:
            revoke(consumer, partitions)
            if self.runner is not None:
                self.runner.save_states()

        self.app._on_revoke = on_revoke  # type: ignore[method-assign, assignment]

    def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Through the engine's producer, which each checkpoint flushes (in its transaction, if on)."""
        self.app._producer.produce(topic=topic, key=key, value=value, headers=headers)

    def ready(self) -> bool:
        return self._running and not self.app._state_manager.recovery_required

    def run(self) -> None:
        """Consume until SIGTERM or SIGINT; then commit what is done and save detector state."""
        if self.health is not None:
            self.health.start()
        if self.reply is not None:
            self.reply.start()
        settle_garbage_collector()
        try:
            while not self._run_until_cut_off():
                self._rejoin()
        except Exception as exc:
            # Nothing past the failing checkpoint was committed; a supervisor restarts the worker,
            # which reads the same records again.
            log.error("the worker stops, committing nothing past this point: %s: %s", type(exc).__name__, exc)
            raise WorkerFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._running = False
            if self.runner is not None:
                self.runner.save_states()
            if self.reply is not None:
                self.reply.stop()
            if self.health is not None:
                self.health.stop()
            if self.store is not None:
                self.store.close()

    def _run_until_cut_off(self) -> bool:
        """Run the engine; False when the group went on without this worker and it must join again.

        A worker cut off from its broker for longer than the group's session timeout is no longer
        a member when the broker is back: committing its last checkpoint fails, and its partitions
        are assigned anew. Nothing of that checkpoint's offsets is committed, so its records are
        read again by whoever gets them; the store's writes are idempotent.
        """
        try:
            self.app.run()
        except CheckpointConsumerCommitError as exc:
            if exc.code not in LEFT_BEHIND:
                raise
            log.warning(
                "the group went on while this worker was cut off (%s); joining it again", exc.description
            )
            return False
        return True

    def _rejoin(self) -> None:
        """A fresh engine over the same state folder; what memory held for the lost partitions goes."""
        self.pairer.rollback()
        for partition in list(self._indexed):
            self.pairer.drop(partition)
        self._indexed.clear()
        self.hand_off.forget_kept()
        if self.runner is not None:
            self.runner.forget()
        self.app, self.dataframe = self._engine()
        self._save_states_on_revoke()
        self._state_store = self._store()

    def _on_payload(
        self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State[bytes, bytes]
    ) -> None:
        context = message_context()
        received = self.source.read(value, headers, context)
        if received is None:
            return
        model = received.model
        model_key = model.kafka_key
        if key != model_key:  # a keyless source: pair it under its model's key
            self.publish(self.payloads, model_key, value or b"", list(headers or ()))
            return
        self.metrics.observe_lag(received, model)
        event = self.source.admit(received, model, context)
        if event is None:
            return
        half = self.source.half(event, context)
        if half is None:
            if is_feedback(event):
                self.hand_off.add_feedback(event)
            return
        partition = context.partition
        self._partition_of[model_key] = partition
        if self._state_partitions.get(partition) is not self._indexed.get(partition):
            self._index(partition)
        for record in self.pairer.offer(state, partition, model_key, half):
            self.hand_off.add_record(record)

    def _on_extra(self, value: bytes | None, key: bytes | None, timestamp: int, headers: Any) -> None:
        """Events from extra topics join the payloads under their model's key, to pair there.

        They never passed the ingest, so its sampling and redaction apply before they are written.
        """
        context = message_context()
        received = self.source.read(value, headers, context)
        if received is None:
            return
        kept = self.source.admit(received, received.model, context)
        if kept is not None:
            self.publish(self.payloads, *self.source.rekeyed(received, kept, value, headers))

    def _tick(self) -> None:
        """Between records: follow assignments, expire halves, close time windows, save state."""
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick = now + TICK_SECONDS
        if self.app._state_manager.recovery_required:
            return
        self._running = True
        self._follow_assignment()
        checkpoint = self.app._processing_context.checkpoint
        stream_id = self.dataframe.stream_id
        wall = time.time()
        for partition, prefix, key in self.pairer.due(wall):
            if partition not in self._indexed:
                continue
            state = checkpoint.get_store_transaction(stream_id, partition).as_state(prefix=prefix)
            record = self.pairer.expire(state, partition, prefix, key)
            if record is not None:
                self.hand_off.add_record(record)
        self.metrics.pending.set(len(self.pairer.index))
        if self.runner is not None:
            self.hand_off.add_detections(self.runner.tick())
            if now >= self._next_save:
                self._next_save = now + self.settings.detections.state_save_seconds
                self.runner.save_states()
            detections = self.settings.detections
            if detections.reload_seconds and now >= self._next_reload:
                self._next_reload = now + detections.reload_seconds
                self.runner.refresh(detections.cache_dir)
        if self.hand_off.pending and checkpoint.empty():
            self._mark_checkpoint(checkpoint)

    def window_state(self, model: ModelRef) -> State[bytes, bytes] | None:
        """The state that keeps ``model``'s open windows, while its partition is this worker's."""
        prefix = model.kafka_key
        partition = self._partition_of.get(prefix)
        store = self.app._state_manager.get_store(self.dataframe.stream_id)
        if partition is None or partition not in store.partitions:
            return None
        checkpoint = self.app._processing_context.checkpoint
        transaction = checkpoint.get_store_transaction(self.dataframe.stream_id, partition)
        return transaction.as_state(prefix=prefix + WINDOWS_PREFIX)

    def _mark_checkpoint(self, checkpoint: Any) -> None:
        """Work is waiting but no record came: a state write makes the engine commit this checkpoint.

        The engine closes a checkpoint with no offsets and no state change without flushing the
        sinks (and with exactly-once aborts its transaction), so a window closed by time, or a
        detection the reply URL gave up on, would wait for the next record.
        """
        partitions = self.app._state_manager.get_store(self.dataframe.stream_id).partitions
        if not partitions:
            return
        transaction = checkpoint.get_store_transaction(self.dataframe.stream_id, min(partitions))
        transaction.as_state(prefix=WORKER_PREFIX).set_bytes(b"flushed", frame(time.time(), b""))

    def _follow_assignment(self) -> None:
        """Let go of the partitions this worker lost; index the waiting halves of those it was given."""
        partitions = dict(self._store().partitions)
        lost = [partition for partition in self._indexed if partition not in partitions]
        for partition in lost:
            self.pairer.drop(partition)
            del self._indexed[partition]
        if lost:
            self.hand_off.forget_kept()
            if self.runner is not None:
                self.runner.forget()
        for partition in partitions:
            self._index(partition)
        held = set(partitions)
        if held != self._held:
            log.info(
                "partitions of %s now held: %s (taken %s, given up %s)",
                self.payloads,
                sorted(held) or "none",
                sorted(held - self._held) or "none",
                sorted(self._held - held) or "none",
            )
            self._held = held

    def _index(self, partition: int) -> None:
        """Index the halves waiting in ``partition``'s state, once per assignment.

        Halves taken since the assignment are in the index already, and not on disk yet.
        """
        store_partition = self._store().partitions.get(partition)
        if store_partition is None or self._indexed.get(partition) is store_partition:
            return
        rocksdb = cast(RocksDBStorePartition, store_partition)
        for stored_key, blob in rocksdb.iter_items(lower_bound=b""):
            prefix = stored_key.split(PREFIX_SEPARATOR, 1)[0]
            if b"\x00" not in prefix:  # what the worker keeps for itself is no half
                self.pairer.restore(partition, prefix, blob)
        self.pairer.index.complete.add(partition)
        self._indexed[partition] = store_partition

    def _store(self) -> Any:
        return self.app._state_manager.get_store(self.dataframe.stream_id)

    @property
    def _state_partitions(self) -> dict[int, Any]:
        return self._state_store.partitions  # type: ignore[no-any-return]
