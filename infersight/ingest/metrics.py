"""The ingest's Prometheus metrics: events taken, events refused, time to acknowledge."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infersight.histograms import SingleWriterHistogram
from infersight.ingest.errors import RejectReason
from infersight.metriclabels import RecentRevisions
from infersight.records import REVISION_LABELS, ModelRef, RawEvent, event_type_label
from infersight.revisions import revision_of

if TYPE_CHECKING:
    from infersight.ingest.publisher import KafkaPublisher

OVERFLOW = "_other"

# ``*_created`` series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class IngestMetrics:
    """Counters labelled by model (and revision) and event type, with a cap on how many models get
    their own series."""

    def __init__(
        self, registry: CollectorRegistry, max_models: int, revisions: RecentRevisions | None = None
    ) -> None:
        self.revisions = revisions or RecentRevisions()
        self.events = self.revisions.series(
            Counter(
                "infersight_ingest_events_total",
                "CloudEvents acknowledged by Kafka, by model, revision and event type.",
                [*REVISION_LABELS, "type"],
                registry=registry,
            )
        )
        self.rejected = Counter(
            "infersight_ingest_rejected_total",
            "Requests refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.sampled = self.revisions.series(
            Counter(
                "infersight_sampled_out_total",
                "Inference events dropped by the model's sample_rate (answered 202, not stored).",
                REVISION_LABELS,
                registry=registry,
            )
        )
        self.request_duration = SingleWriterHistogram(
            "infersight_ingest_request_duration_seconds",
            "Time from receiving a request to answering it.",
            (),
            (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry,
        )
        for reason in (
            "malformed",
            "unauthorized",
            "too_large",
            "unsupported_media_type",
            "kafka_unavailable",
        ):
            self.rejected.labels(reason=reason)
        self._max_models = max_models
        self._models: set[ModelRef] = set()

    def _model_labels(self, model: ModelRef) -> tuple[str, str, str, str]:
        if model not in self._models:
            if len(self._models) >= self._max_models:
                return OVERFLOW, OVERFLOW, OVERFLOW, OVERFLOW
            self._models.add(model)
        return model.metric_labels

    def _labels(self, event: RawEvent) -> tuple[str, ...]:
        model_labels = self._model_labels(event.model)
        revision = revision_of(event.attributes) if model_labels[0] != OVERFLOW else OVERFLOW
        return self.revisions.labels(model_labels, revision)

    def accepted(self, event: RawEvent) -> None:
        self.events(*self._labels(event), event_type_label(event.type)).inc()

    def sampled_out(self, event: RawEvent) -> None:
        self.sampled(*self._labels(event)).inc()

    def rejected_for(self, reason: RejectReason) -> None:
        self.rejected.labels(reason=reason).inc()


class SpoolCollector(Collector):
    """The spool's figures, read when scraped: bytes and events held, the oldest's age, events moved."""

    def __init__(self, publisher: KafkaPublisher) -> None:
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        spool = self.publisher.spool
        held = GaugeMetricFamily(
            "infersight_ingest_spool_events", "Events on the ingest's disk, waiting for Kafka."
        )
        size = GaugeMetricFamily("infersight_ingest_spool_bytes", "Bytes of the events on the ingest's disk.")
        age = GaugeMetricFamily(
            "infersight_ingest_spool_oldest_age_seconds",
            "How long the oldest spooled event has waited (0: none).",
        )
        spooled = CounterMetricFamily(
            "infersight_ingest_spooled", "Events written to the spool because Kafka could not take them."
        )
        drained = CounterMetricFamily(
            "infersight_ingest_spool_drained", "Events moved from the spool to Kafka."
        )
        if spool is not None:
            oldest = spool.oldest
            held.add_metric([], spool.events)
            size.add_metric([], spool.bytes)
            age.add_metric([], 0.0 if oldest is None else max(0.0, time.time() - oldest))
            spooled.add_metric([], spool.spooled)
            drained.add_metric([], spool.drained)
        yield from (held, size, age, spooled, drained)
