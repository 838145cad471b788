"""The stream workers' own metrics: records handed on, raw and undecodable bodies, duplicates, lag."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge

from infersight.histograms import SingleWriterHistogram
from infersight.metriclabels import RecentRevisions
from infersight.records import REVISION_LABELS, InferenceRecord, ModelRef, RawEvent
from infersight.revisions import revision_of
from infersight.streams.decode import Undecodable
from infersight.times import to_unix

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class StreamMetrics:
    """Model metrics labelled by revision too, each model's few recent revisions only."""

    def __init__(self, registry: CollectorRegistry, revisions: RecentRevisions | None = None) -> None:
        self.revisions = revisions or RecentRevisions()
        series = self.revisions.series
        self.records = series(
            Counter(
                "infersight_records_total",
                "Inference records handed to detectors and sinks; mode is paired, request or response.",
                [*REVISION_LABELS, "mode"],
                registry=registry,
            )
        )
        self.raw_payloads = series(
            Counter(
                "infersight_raw_payloads_total",
                "Request or response bodies kept raw: of no known protocol, or undecodable.",
                REVISION_LABELS,
                registry=registry,
            )
        )
        self.undecodable = series(
            Counter(
                "infersight_undecodable_payloads_total",
                "Raw payloads whose body claims JSON, gzip or a known protocol and does not decode, "
                "by reason.",
                [*REVISION_LABELS, "reason"],
                registry=registry,
            )
        )
        self.duplicates = series(
            Counter(
                "infersight_duplicates_total",
                "Requests or responses dropped because their inference was already handed on.",
                REVISION_LABELS,
                registry=registry,
            )
        )
        self.sampled = series(
            Counter(
                "infersight_sampled_out_total",
                "Inference events dropped by the model's sample_rate.",
                REVISION_LABELS,
                registry=registry,
            )
        )
        self.other_events = Counter(
            "infersight_stream_events_total",
            "Events that are not an inference request or response, by type (unknown types as other).",
            ["type"],
            registry=registry,
        )
        self.pending = Gauge(
            "infersight_pending_halves",
            "Requests or responses waiting for their other half in this worker.",
            registry=registry,
        )
        self.lag = SingleWriterHistogram(
            "infersight_event_lag_seconds",
            "Time from the event's own time (ce-time) to the worker handling it.",
            REVISION_LABELS,
            LAG_BUCKETS,
            registry,
        )
        self.revisions.on_forget(self.lag.forget)

    def _labels(self, event: RawEvent, model: ModelRef) -> tuple[str, ...]:
        return self.revisions.labels(model.metric_labels, revision_of(event.attributes))

    def observe_lag(self, event: RawEvent, model: ModelRef) -> None:
        """Now minus the event's own time; called for every event."""
        text = event.attributes.get("time")
        if not text:
            return
        try:
            stamp = to_unix(text, strict=True)  # as the event's check read it
        except ValueError:
            return
        self.lag.observe(self._labels(event, model), time.time() - stamp)

    def duplicate(self, event: RawEvent) -> None:
        self.duplicates(*self._labels(event, event.model)).inc()

    def sampled_out(self, event: RawEvent) -> None:
        self.sampled(*self._labels(event, event.model)).inc()

    def record(self, record: InferenceRecord) -> None:
        """One record handed on; its raw halves, undecodable ones by reason too (a subset of raw)."""
        labels = self.revisions.labels(record.model.metric_labels, record.revision)
        self.records(*labels, record.mode).inc()
        for half in (record.request, record.response):
            if half is not None and half.payload.protocol == "raw":
                self.raw_payloads(*labels).inc()
                if isinstance(half.payload, Undecodable):
                    self.undecodable(*labels, half.payload.reason).inc()
