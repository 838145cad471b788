"""The stream workers' own metrics: records handed on, raw and undecodable bodies, duplicates, lag."""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from infersight.metriclabels import RecentRevisions, starting_with
from infersight.records import REVISION_LABELS, InferenceRecord, ModelRef, RawEvent
from infersight.revisions import revision_of
from infersight.streams.decode import Undecodable
from infersight.times import to_unix

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: The ``le`` label of each bucket, as Prometheus' client writes it.
LAG_BOUNDS = (*(repr(float(bound)) for bound in LAG_BUCKETS), "+Inf")
LAG_HELP = "Time from the event's own time (ce-time) to the worker handling it."


class LagHistogram(Collector):
    """``infersight_event_lag_seconds``, observed once for every event the worker reads.

    prometheus_client's Histogram takes a lock per observation, which cost the worker about 9 µs
    of its 70 per event (``bench/worker.py``). Only the consume loop observes; a scrape reads a
    copy of each series' counts, so it sees every observation made before it, or one fewer.
    """

    name = "infersight_event_lag_seconds"

    def __init__(self, registry: CollectorRegistry, revisions: RecentRevisions) -> None:
        # Per label values: the count of each bucket (the last one +Inf), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}
        revisions.on_forget(self.forget)
        registry.register(self)

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        counts = self._series.get(labels)
        if counts is None:
            counts = self._series[labels] = [0.0] * (len(LAG_BUCKETS) + 2)
        seconds = max(0.0, seconds)
        counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def forget(self, prefix: tuple[str, ...]) -> None:
        for labels in starting_with(self._series, prefix):
            del self._series[labels]

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, LAG_HELP, labels=REVISION_LABELS)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, LAG_HELP, labels=REVISION_LABELS)
        for labels, counts in list(self._series.items()):
            *buckets, total = list(counts)
            cumulative = list(itertools.accumulate(buckets))
            family.add_metric(list(labels), list(zip(LAG_BOUNDS, cumulative, strict=True)), total)
        yield family


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
        self.lag = LagHistogram(registry, self.revisions)

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
