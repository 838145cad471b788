"""The stream workers' own metrics: records handed on, raw and undecodable bodies, duplicates, lag."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infersight.records import MODEL_LABELS, InferenceRecord, ModelRef, RawEvent
from infersight.streams.decode import Undecodable
from infersight.times import to_unix

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "infersight_records_total",
            "Inference records handed to detectors and sinks; mode is paired, request or response.",
            [*MODEL_LABELS, "mode"],
            registry=registry,
        )
        self.raw_payloads = Counter(
            "infersight_raw_payloads_total",
            "Request or response bodies kept raw: of no known protocol, or undecodable.",
            MODEL_LABELS,
            registry=registry,
        )
        self.undecodable = Counter(
            "infersight_undecodable_payloads_total",
            "Raw payloads whose body claims JSON, gzip or a known protocol and does not decode, by reason.",
            [*MODEL_LABELS, "reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "infersight_duplicates_total",
            "Requests or responses dropped because their inference was already handed on.",
            MODEL_LABELS,
            registry=registry,
        )
        self.sampled = Counter(
            "infersight_sampled_out_total",
            "Inference events dropped by the model's sample_rate.",
            MODEL_LABELS,
            registry=registry,
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
        self.lag = Histogram(
            "infersight_event_lag_seconds",
            "Time from the event's own time (ce-time) to the worker handling it.",
            MODEL_LABELS,
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        # The series of each model, kept: looking them up by labels costs more than the count itself.
        self._lag_series: dict[tuple[str, ...], Histogram] = {}
        self._record_series: dict[tuple[tuple[str, ...], str], Counter] = {}

    def observe_lag(self, event: RawEvent, model: ModelRef) -> None:
        """Now minus the event's own time; called for every event, so each model's series is kept."""
        text = event.attributes.get("time")
        if not text:
            return
        try:
            stamp = to_unix(text, strict=True)  # as the event's check read it
        except ValueError:
            return
        labels = model.metric_labels
        series = self._lag_series.get(labels)
        if series is None:
            series = self._lag_series[labels] = self.lag.labels(*labels)
        series.observe(max(0.0, time.time() - stamp))

    def duplicate(self, event: RawEvent) -> None:
        self.duplicates.labels(*event.model.metric_labels).inc()

    def sampled_out(self, event: RawEvent) -> None:
        self.sampled.labels(*event.model.metric_labels).inc()

    def record(self, record: InferenceRecord) -> None:
        """One record handed on; its raw halves, undecodable ones by reason too (a subset of raw)."""
        labels = record.model.metric_labels
        series = self._record_series.get((labels, record.mode))
        if series is None:
            series = self._record_series[(labels, record.mode)] = self.records.labels(*labels, record.mode)
        series.inc()
        for half in (record.request, record.response):
            if half is not None and half.payload.protocol == "raw":
                self.raw_payloads.labels(*labels).inc()
                if isinstance(half.payload, Undecodable):
                    self.undecodable.labels(*labels, half.payload.reason).inc()
