"""The revision label stays bounded: a model's least recently seen revision leaves every metric."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from infersight.metriclabels import RecentRevisions, Series

MODEL = ("models", "iris", "predictor", "")


def test_the_least_recently_seen_revision_leaves_every_series_of_it() -> None:
    registry = CollectorRegistry()
    revisions = RecentRevisions(limit=2)
    records = Series(
        Counter(
            "records",
            "",
            ["namespace", "isvc", "component", "endpoint", "revision", "mode"],
            registry=registry,
        ),
        revisions,
    )
    flagged = Series(
        Counter("flagged", "", ["namespace", "isvc", "component", "endpoint", "revision"], registry=registry),
        revisions,
    )
    other = Series(
        Counter(
            "other_model", "", ["namespace", "isvc", "component", "endpoint", "revision"], registry=registry
        ),
        revisions,
    )

    for revision in ("iris-00001", "iris-00002", "iris-00001"):  # 00001 seen again: 00002 is the older
        labels = revisions.labels(MODEL, revision)
        records(*labels, "paired").inc()
        records(*labels, "request").inc()
        flagged(*labels).inc()
    other(*revisions.labels(("models", "wine", "predictor", ""), "wine-00001")).inc()
    labels = revisions.labels(MODEL, "iris-00003")
    records(*labels, "paired").inc()

    def value(name: str, revision: str, **extra: str) -> float | None:
        names = ("namespace", "isvc", "component", "endpoint")
        model = MODEL if name != "other_model_total" else ("models", "wine", "predictor", "")
        return registry.get_sample_value(
            name, {**dict(zip(names, model, strict=True)), "revision": revision, **extra}
        )

    assert 'revision="iris-00002"' not in generate_latest(registry).decode()
    assert value("records_total", "iris-00001", mode="paired") == 2.0
    assert value("records_total", "iris-00001", mode="request") == 2.0
    assert value("flagged_total", "iris-00001") == 2.0
    assert value("records_total", "iris-00003", mode="paired") == 1.0
    assert value("other_model_total", "wine-00001") == 1.0  # another model's revisions are its own
    # A forgotten revision that comes back starts its series again, and the least recent goes.
    records(*revisions.labels(MODEL, "iris-00002"), "paired").inc()
    assert value("records_total", "iris-00002", mode="paired") == 1.0
    assert value("records_total", "iris-00001", mode="paired") is None
    assert value("flagged_total", "iris-00001") is None


def test_the_lag_histogram_counts_each_bucket_and_forgets_old_revisions() -> None:
    import time

    from infersight.records import RawEvent
    from infersight.streams.metrics import StreamMetrics
    from infersight.times import format_time

    registry = CollectorRegistry()
    metrics = StreamMetrics(registry, RecentRevisions(limit=1))

    def event(revision: str, lag: float) -> RawEvent:
        attributes = {
            "time": format_time(time.time() - lag),
            "namespace": "models",
            "inferenceservicename": "iris",
            "revision": revision,
        }
        return RawEvent(attributes=attributes, data=b"")

    for lag in (0.0, 3.0, 3.0, 7200.0):
        metrics.observe_lag(event("iris-00001", lag), event("iris-00001", lag).model)
    labels = {
        "namespace": "models",
        "inferenceservice": "iris",
        "component": "",
        "endpoint": "",
        "revision": "iris-00001",
    }

    def bucket(le: str) -> float | None:
        return registry.get_sample_value("infersight_event_lag_seconds_bucket", {**labels, "le": le})

    assert (bucket("0.01"), bucket("2.5"), bucket("5.0"), bucket("3600.0"), bucket("+Inf")) == (1, 1, 3, 3, 4)
    assert registry.get_sample_value("infersight_event_lag_seconds_count", labels) == 4
    assert 7205 < (registry.get_sample_value("infersight_event_lag_seconds_sum", labels) or 0) < 7210
    metrics.observe_lag(event("iris-00002", 1.0), event("iris-00002", 1.0).model)
    assert registry.get_sample_value("infersight_event_lag_seconds_count", labels) is None
    newer = {**labels, "revision": "iris-00002"}
    assert registry.get_sample_value("infersight_event_lag_seconds_count", newer) == 1
