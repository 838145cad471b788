"""The canary's verdict as Prometheus metrics, from the query API's ``/metrics``.

On a scrape, every model that two named revisions served within ``api.canary_lookback_seconds``
is judged (the revision seen first against the one seen last, in windows of
``api.canary_window_seconds``), at most once per ``api.canary_refresh_seconds``: the verdict as
``infersight_canary_verdict`` (1 promote, 0 hold, -1 roll back) and the windows per call as
``infersight_canary_windows``. Only the two revisions compared are labels, so series stay few.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from infersight.sinks.canary import CanaryRequest, judge_canary
from infersight.sinks.store.filters import PayloadFilter, QueryError
from infersight.sinks.store.query import list_revisions
from infersight.sinks.store.views import CanaryVerdict

VERDICT_VALUES = {"promote": 1.0, "hold": 0.0, "roll back": -1.0}
LABELS = ("namespace", "inferenceservice", "component", "baseline", "candidate")
CALLS = ("differs", "same", "too few")


class CanaryCollector(Collector):
    """Judges the current canaries when scraped, reusing the last results for a while."""

    def __init__(
        self,
        engine: Engine,
        lookback_seconds: float,
        window_seconds: float,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.lookback = timedelta(seconds=lookback_seconds)
        self.window_seconds = window_seconds
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._judged: list[tuple[tuple[str, ...], CanaryVerdict]] = []
        self._at: float | None = None

    def _judge(self) -> list[tuple[tuple[str, ...], CanaryVerdict]]:
        span = PayloadFilter(since=datetime.now(UTC) - self.lookback)
        served: dict[tuple[str, str, str], int] = {}
        for revision in list_revisions(self.engine, span):
            if revision.revision:
                model = (revision.namespace, revision.inferenceservice, revision.component)
                served[model] = served.get(model, 0) + 1
        judged: list[tuple[tuple[str, ...], CanaryVerdict]] = []
        for (namespace, service, component), count in sorted(served.items()):
            if count < 2:
                continue
            where = PayloadFilter(namespace, service, component=component, since=span.since)
            try:
                verdict = judge_canary(self.engine, CanaryRequest(where, window_seconds=self.window_seconds))
            except QueryError:
                continue  # no span both served yet
            judged.append(((namespace, service, component, verdict.baseline, verdict.candidate), verdict))
        return judged

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            now = self.clock()
            if self._at is None or now - self._at >= self.refresh_seconds:
                self._judged, self._at = self._judge(), now
            judged = self._judged
        verdicts = GaugeMetricFamily(
            "infersight_canary_verdict",
            "The latest canary verdict of a candidate revision against its baseline: "
            "1 promote, 0 hold, -1 roll back.",
            labels=LABELS,
        )
        windows = GaugeMetricFamily(
            "infersight_canary_windows",
            "Windows of the canary analysis by call (differs, same, too few), over the lookback.",
            labels=(*LABELS, "call"),
        )
        for labels, verdict in judged:
            verdicts.add_metric(labels, VERDICT_VALUES[verdict.verdict])
            for call in CALLS:
                windows.add_metric((*labels, call), sum(1 for w in verdict.windows if w.call == call))
        yield verdicts
        yield windows
