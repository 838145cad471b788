"""A Prometheus histogram for a value observed on every event, by one thread.

prometheus_client's Histogram takes a lock per observation: about 9 µs of the worker's 70 per
event (``bench/worker.py``) and a few per ingest request. These observations all come from one
thread (the worker's consume loop, the ingest's event loop); a scrape reads a copy of each
series' counts, so it sees every observation made before it, or one fewer.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from infersight.metriclabels import starting_with


class SingleWriterHistogram(Collector):
    """A histogram of ``buckets`` upper bounds (seconds, say) per label values, observed lock-free."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.buckets = tuple(float(bound) for bound in buckets)
        #: The ``le`` label of each bucket, as Prometheus' client writes it.
        self._bounds = (*(repr(bound) for bound in self.buckets), "+Inf")
        # Per label values: the count of each bucket (the last one +Inf), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}
        registry.register(self)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts = self._series.get(labels)
        if counts is None:
            counts = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        value = max(0.0, value)
        counts[bisect.bisect_left(self.buckets, value)] += 1
        counts[-1] += value

    def forget(self, prefix: tuple[str, ...]) -> None:
        """Remove every series whose label values start with ``prefix``."""
        for labels in starting_with(self._series, prefix):
            del self._series[labels]

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, counts in list(self._series.items()):
            *buckets, total = list(counts)
            cumulative = list(itertools.accumulate(buckets))
            family.add_metric(list(labels), list(zip(self._bounds, cumulative, strict=True)), total)
        yield family
