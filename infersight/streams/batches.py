"""What a checkpoint hands on: records scored by the detectors in one batch, then every sink.

Records and feedback collect between checkpoints. At each checkpoint :meth:`HandOff.flush`
runs the detectors once over the whole batch (one ``predict`` per detector and model), writes
the scored records, the detections and the feedback to every sink and flushes each; only
after that does the engine produce the pairing state's changelog and commit the offsets. A sink
that pushes back (:class:`~infersight.sinks.base.Backpressure`) makes the engine read the batch
again: the scores and detections already made for it are kept, so that detectors and their
windows see each record once however often the store was away.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from infersight.detectors.runner import DetectorRunner
from infersight.records import Detection, InferenceRecord, RawEvent
from infersight.sinks.base import Backpressure, Batch, Sink
from infersight.streams.metrics import StreamMetrics

log = logging.getLogger("infersight.worker")

RecordKey = tuple[str, str, str, str]


def record_key(record: InferenceRecord) -> RecordKey:
    """Which inference a record is, the same when a batch is read again."""
    half = record.request or record.response
    time = half.event.attributes.get("time", "") if half is not None else ""
    return (record.model.partition_key, record.request_id, time, record.mode)


class HandOff:
    """Collects a checkpoint's records and hands them to detectors and sinks in that order."""

    def __init__(
        self, sinks: Sequence[Sink], metrics: StreamMetrics, runner: DetectorRunner | None = None
    ) -> None:
        self.sinks = list(sinks)
        self.metrics = metrics
        self.runner = runner if runner is not None and not runner.empty else None
        self._records: list[InferenceRecord] = []
        self._feedback: list[RawEvent] = []
        self._detections: list[Detection] = []
        # Scored before a sink pushed back, waiting for the same records to come again.
        self._scored: dict[RecordKey, InferenceRecord] = {}

    def add_record(self, record: InferenceRecord) -> None:
        self._records.append(record)

    def add_feedback(self, event: RawEvent) -> None:
        self._feedback.append(event)

    def add_detections(self, detections: Sequence[Detection]) -> None:
        self._detections.extend(detections)

    @property
    def pending(self) -> bool:
        """Whether a flush has work to do: collected items, or a sink's own (a dead letter to send)."""
        return bool(self._records or self._feedback or self._detections) or any(
            sink.pending for sink in self.sinks
        )

    def flush(self) -> None:
        """Score, write and flush this checkpoint's batch; raises Backpressure to have it read again."""
        records, self._records = self._records, []
        feedback, self._feedback = self._feedback, []
        detections, self._detections = self._detections, []
        scored = self._score(records, detections)
        batch = Batch(records=scored, detections=detections, feedback=feedback)
        try:
            if batch:
                for sink in self.sinks:
                    sink.write(batch)
            for sink in self.sinks:
                sink.flush()
        except Backpressure:
            # The engine reads these records again; their detections stay until they went out.
            self._scored.update((record_key(record), record) for record in scored)
            self._detections = detections
            raise
        for record in scored:
            self.metrics.record(record)

    def forget_kept(self) -> None:
        """Partitions went elsewhere: records scored before a push-back may now be another worker's.

        What was collected for this checkpoint stays: its offsets are committed with it.
        """
        self._scored.clear()

    def _score(self, records: list[InferenceRecord], detections: list[Detection]) -> list[InferenceRecord]:
        if self.runner is None or not records:
            return records
        kept = {index: self._scored.pop(record_key(record), None) for index, record in enumerate(records)}
        fresh = [record for index, record in enumerate(records) if kept[index] is None]
        if not fresh:
            return [record for record in kept.values() if record is not None]
        scored_fresh, found = self.runner.process(fresh)
        detections.extend(found)
        scored_iter = iter(scored_fresh)
        return [kept[index] or next(scored_iter) for index in range(len(records))]
