"""``infersight worker``: a stream worker; run several with the same configuration to scale out."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from infersight.cli.context import CliError, kafka_error, settings_of
from infersight.config import Settings
from infersight.kafkaclient import (
    KafkaAuthenticationFailed,
    KafkaUnreachable,
    ensure_topics,
    infersight_topics,
    partition_counts,
)

log = logging.getLogger("infersight.worker")


def _wait_for_topics(settings: Settings) -> dict[str, int]:
    """The source topics' partition counts, once a broker answers: a broker not up yet is waited for."""
    kafka, config = settings.kafka, settings.worker
    sources = [kafka.topics.payloads, *config.extra_topics]
    while True:
        try:
            if kafka.create_topics:
                internal = [config.records_topic] if config.records_topic else []
                ensure_topics(kafka, [*infersight_topics(kafka), *internal])
            return partition_counts(kafka, sources)
        except KafkaAuthenticationFailed as exc:
            raise kafka_error(exc) from exc
        except KafkaUnreachable as exc:
            log.warning("waiting for Kafka at %s (%s)", kafka.bootstrap_servers, exc)


def worker(
    ctx: typer.Context,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Port of this worker's /metrics and /readyz (worker.metrics_port); 0 turns it off."
        ),
    ] = None,
) -> None:
    """Decode and pair the events on Kafka and hand the records to detectors and sinks."""
    from prometheus_client import CollectorRegistry

    from infersight import logs
    from infersight.cli.storeargs import store_errors
    from infersight.detectors.loading import DetectorLoadError, load_all
    from infersight.detectors.metrics import DetectorMetrics
    from infersight.detectors.runner import DetectorRunner
    from infersight.detectors.state import StateStore
    from infersight.metriclabels import RecentRevisions
    from infersight.sinks.store import SqlStore
    from infersight.streams.app import StreamWorker, WorkerFailed

    settings = settings_of(ctx)
    if metrics_port is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"metrics_port": metrics_port})}
        )
    config = settings.worker
    logs.configure(config.log_level)
    log.info("waiting for Kafka at %s ...", settings.kafka.bootstrap_servers)
    counts = _wait_for_topics(settings)
    sources = [settings.kafka.topics.payloads, *config.extra_topics]
    missing = [topic for topic in sources if topic not in counts]
    if missing:
        raise CliError(f"source topics do not exist: {', '.join(missing)}")
    detections = settings.detections
    try:
        loaded = load_all(settings.models, detections.cache_dir)
    except DetectorLoadError as exc:
        raise CliError(str(exc)) from exc
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"worker.state_dir {config.state_dir}: {exc.strerror or exc}") from exc
    store = None
    if settings.store.enabled:
        with store_errors():
            store = SqlStore.from_config(settings.store)
    registry = CollectorRegistry()
    runner = DetectorRunner(
        loaded,
        DetectorMetrics(
            registry, detections.max_features_in_metrics, RecentRevisions(config.max_revisions_in_metrics)
        ),
        StateStore(detections.state_uri, detections.state_storage_options),
    )
    try:
        stream_worker = StreamWorker(settings, runner=runner, store=store, registry=registry)
    except WorkerFailed as exc:
        raise CliError(str(exc)) from exc
    log.info(
        "worker %s consuming %s (%s partitions)",
        config.group_id,
        ", ".join(sources),
        counts[settings.kafka.topics.payloads],
    )
    try:
        stream_worker.run()
    except WorkerFailed as exc:
        raise CliError(f"worker stopped: {exc}") from exc
