"""The stream workers' own metrics: records handed on, dead letters, pending halves, event lag."""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infersight.records import Half, InferenceRecord, RawEvent

MODEL_LABELS = ("namespace", "inferenceservice", "endpoint")
DEADLETTER_REASONS = ("invalid_event", "undecodable_payload", "reply_failed")
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
            "Request or response bodies of no known protocol, kept raw.",
            MODEL_LABELS,
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
        self.deadletters = Counter(
            "infersight_deadletters_total",
            "Events sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in DEADLETTER_REASONS:  # at zero from the start, so the first dead letter is an increase
            self.deadletters.labels(reason)
        self.other_events = Counter(
            "infersight_stream_events_total",
            "Events that are not an inference request or response, by type (unknown types as other).",
            ["type"],
            registry=registry,
        )
        self.store_errors = Counter(
            "infersight_store_errors_total",
            "Store writes that failed and were retried.",
            registry=registry,
        )
        self.rereads = Counter(
            "infersight_offset_rereads_total",
            "Times the worker sought back to an offset the consumer skipped without handing it on.",
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

    def observe_lag(self, event: RawEvent) -> None:
        text = event.attributes.get("time")
        if not text:
            return
        try:
            stamp = datetime.fromisoformat(text).timestamp()
        except ValueError:
            return
        model = event.model
        self.lag.labels(model.namespace, model.inferenceservice, model.endpoint).observe(
            max(0.0, time.time() - stamp)
        )

    def duplicate(self, half: Half) -> None:
        model = half.event.model
        self.duplicates.labels(model.namespace, model.inferenceservice, model.endpoint).inc()

    def sampled_out(self, event: RawEvent) -> None:
        model = event.model
        self.sampled.labels(model.namespace, model.inferenceservice, model.endpoint).inc()

    def record(self, record: InferenceRecord) -> None:
        model = record.model
        self.records.labels(model.namespace, model.inferenceservice, model.endpoint, record.mode).inc()
        for half in (record.request, record.response):
            if half is not None and half.payload.protocol == "raw":
                self.raw_payloads.labels(model.namespace, model.inferenceservice, model.endpoint).inc()
