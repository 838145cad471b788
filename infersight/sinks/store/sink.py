"""The SQL store as a sink: a refused record is found and dead-lettered, an absent database pushes back.

A write the database refuses for what it holds (a value its type cannot take, a broken
constraint) is split in halves until the one record, detection or feedback event at fault is
found; that item goes to the dead-letter topic with the database's reason and the rest is
stored. A database that does not answer (connection refused or lost, locked, timed out) raises
:class:`~infersight.sinks.base.Backpressure`: the worker commits nothing and comes back to the
same batch, so an outage of any length loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from infersight.binding import event_headers
from infersight.records import Detection, InferenceRecord, RawEvent
from infersight.sinks.base import Backpressure, Batch
from infersight.sinks.deadletter import DeadLetters
from infersight.sinks.store.metrics import StoreMetrics
from infersight.sinks.store.writer import SqlStore

log = logging.getLogger("infersight.store")

#: Seconds the worker pauses before trying an unreachable database again, growing to the last.
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
Item = InferenceRecord | Detection | RawEvent


def unreachable(exc: BaseException) -> bool:
    """Whether the database is away (try again later) rather than refusing what it was given."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout | OSError)


def _split(items: Sequence[Item]) -> tuple[list[InferenceRecord], list[Detection], list[RawEvent]]:
    records = [item for item in items if isinstance(item, InferenceRecord)]
    detections = [item for item in items if isinstance(item, Detection)]
    feedback = [item for item in items if isinstance(item, RawEvent)]
    return records, detections, feedback


class StoreSink:
    """Writes each checkpoint's batches in one transaction; see the module for what goes wrong."""

    name = "store"

    def __init__(
        self,
        store: SqlStore,
        registry: CollectorRegistry,
        deadletters: DeadLetters | None = None,
    ) -> None:
        self.store = store
        self.metrics = StoreMetrics(registry)
        self.metrics.set_accuracy(store.accuracy())
        self.deadletters = deadletters
        self.errors = Counter(
            "infersight_store_errors_total",
            "Store writes that failed, by why: unreachable (retried later) or refused (split, "
            "the refused item dead-lettered).",
            ["error"],
            registry=registry,
        )
        for error in ("unreachable", "refused"):
            self.errors.labels(error)
        self._items: list[Item] = []
        self._failures = 0

    @property
    def pending(self) -> bool:
        return bool(self._items)

    def write(self, batch: Batch) -> None:
        self._items.extend(batch.records)
        self._items.extend(batch.detections)
        self._items.extend(batch.feedback)

    def flush(self) -> None:
        items, self._items = self._items, []
        if not items:
            return
        try:
            self._write(items)
        except SQLAlchemyError as exc:
            if not unreachable(exc):
                raise
            self.errors.labels("unreachable").inc()
            delay = RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS) - 1)]
            self._failures += 1
            log.warning("store unreachable (%s); trying again in %ss", _reason(exc), delay)
            raise Backpressure(f"store unreachable: {_reason(exc)}", delay) from exc
        self._failures = 0

    def _write(self, items: Sequence[Item]) -> None:
        """Write ``items``; a refusal splits them until the refused one is found and dead-lettered."""
        started = time.perf_counter()
        try:
            counts = self.store.write(*_split(items))
        except SQLAlchemyError as exc:
            if unreachable(exc):
                raise
            self.errors.labels("refused").inc()
            if len(items) > 1:
                middle = len(items) // 2
                self._write(items[:middle])
                self._write(items[middle:])
                return
            self._refused(items[0], _reason(exc))
            return
        self.metrics.observe(counts, time.perf_counter() - started)

    def _refused(self, item: Item, reason: str) -> None:
        log.warning("the store refused %s: %s", _describe(item), reason)
        if self.deadletters is None:
            return
        if isinstance(item, InferenceRecord):
            self.deadletters.record(item, "store_refused", reason)
        elif isinstance(item, Detection):
            self.deadletters.detection(item, "store_refused", reason)
        else:
            self.deadletters.send(None, item.data, event_headers(item), "store_refused", reason)


def _reason(exc: BaseException) -> str:
    original: Any = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return f"{type(original or exc).__name__}: {text[0] if text else ''}"


def _describe(item: Item) -> str:
    if isinstance(item, InferenceRecord):
        return f"inference {item.request_id} of {item.model.partition_key}"
    if isinstance(item, Detection):
        return f"detection {item.id}"
    return f"feedback event {item.attributes.get('id')}"
