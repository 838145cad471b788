"""``infersight worker``: a stream worker; run several with the same configuration to scale out."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from infersight.cli.context import CliError, kafka_error, settings_of
from infersight.kafkaclient import KafkaUnreachable, ensure_topics, infersight_topics, partition_counts

console = Console(stderr=True)


def worker(
    ctx: typer.Context,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of this worker's /metrics (worker.metrics_port); 0 turns it off.")
    ] = None,
) -> None:
    """Decode and pair the events on Kafka and hand the records to detectors and sinks."""
    import faust
    from prometheus_client import CollectorRegistry

    from infersight import logs
    from infersight.detectors.loading import DetectorLoadError, load_all
    from infersight.detectors.metrics import DetectorMetrics
    from infersight.detectors.runner import DetectorRunner
    from infersight.detectors.state import StateStore
    from infersight.sinks.store import SqlStore, StoreError
    from infersight.streams.worker import StreamWorker

    settings = settings_of(ctx)
    if metrics_port is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"metrics_port": metrics_port})}
        )
    config = settings.worker
    logs.configure(config.log_level)
    try:
        with console.status(f"waiting for Kafka at {settings.kafka.bootstrap_servers} ..."):
            if settings.kafka.create_topics:
                internal = [config.records_topic] if config.records_topic else []
                ensure_topics(settings.kafka, [*infersight_topics(settings.kafka), *internal])
            sources = [settings.kafka.topics.payloads, *config.extra_topics]
            counts = partition_counts(settings.kafka, sources)
    except KafkaUnreachable as exc:
        raise kafka_error(exc) from exc
    missing = [topic for topic in sources if topic not in counts]
    if missing:
        raise CliError(f"source topics do not exist: {', '.join(missing)}")
    if len(set(counts.values())) > 1:
        described = ", ".join(f"{topic} has {count}" for topic, count in counts.items())
        raise CliError(f"source topics must have the same number of partitions ({described})")
    detections = settings.detections
    try:
        with console.status(
            f"loading {sum(len(model.detectors) for model in settings.models)} detectors ..."
        ):
            loaded = load_all(settings.models, detections.cache_dir)
    except DetectorLoadError as exc:
        raise CliError(str(exc)) from exc
    store = None
    if settings.store.enabled:
        try:
            store = SqlStore.from_config(settings.store)
        except StoreError as exc:
            raise CliError(str(exc)) from exc
    registry = CollectorRegistry()
    runner = DetectorRunner(
        loaded,
        DetectorMetrics(registry, detections.max_features_in_metrics),
        StateStore(detections.state_uri, detections.state_storage_options),
    )
    stream_worker = StreamWorker(
        settings,
        partitions=counts[settings.kafka.topics.payloads],
        runner=runner,
        store=store,
        registry=registry,
    )
    faust.Worker(stream_worker.app, loglevel=config.log_level, quiet=True).execute_from_commandline()
