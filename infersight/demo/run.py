"""The demo from start to end: train, fit, configure, start the stack, send the phases, report.

Training and fitting are cached in the demo folder, so the second run goes straight to traffic.
Every number in the final table is read back from the pipeline (detections topic, store).
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.live import Live

from infersight.config import Settings, load_settings
from infersight.demo import data, detectors, models
from infersight.demo.live import Progress, render
from infersight.demo.phases import Phase, Planner, Sizes
from infersight.demo.results import PhaseResult, Stored, read_store, tally
from infersight.demo.send import send
from infersight.demo.stack import own_stack, port_or_free, wait_until_answers
from infersight.demo.traffic import Event, feedback, inference
from infersight.demo.watch import DetectionWatcher
from infersight.detectors.loading import use_legacy_keras

#: What the worker's /metrics must show once the demo's traffic went through.
EXPECTED_METRICS = (
    "infersight_records_total",
    "infersight_drift_tests_total",
    "infersight_drift_p_value",
    "infersight_outliers_total",
    "infersight_outlier_score_bucket",
    "infersight_adversarial_total",
    "infersight_detector_duration_seconds_bucket",
    "infersight_event_lag_seconds_bucket",
    "infersight_store_rows_total",
    "infersight_feedback_total",
)


@dataclass(frozen=True)
class Options:
    workdir: Path
    sizes: Sizes = field(default_factory=Sizes)
    adversarial_epochs: int = 50
    classifier_epochs: int = 30
    #: A running ingest to send to (its worker must run the demo's config); None starts a stack.
    ingest_url: str | None = None
    #: Settings of the running stack (with ``ingest_url``); None: the written demo config.
    config: Path | None = None
    concurrency: int = 16
    wait_seconds: float = 180.0


@dataclass
class Outcome:
    results: list[PhaseResult]
    header: list[str]
    rows: list[list[str]]
    reports: list[Path]
    exports: list[tuple[Path, int]]
    urls: list[tuple[str, str]]
    missing_metrics: list[str]
    metrics_text: str
    seconds: float
    phases: list[Phase] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)


Say = Callable[[str], None]


def write_config(workdir: Path, fitted: detectors.Fitted, window: int, run_id: str) -> Path:
    """The demo's infersight.yaml: its models, a store and state in the demo folder, topics of its own.

    Each run gets fresh topics and a fresh consumer group, so that nothing a earlier run left in
    Kafka (events, half-paired inferences in the worker's changelog) shifts this run's drift windows.
    """
    path = workdir / "infersight.yaml"
    prefix = f"{detectors.NAMESPACE}.{run_id}"
    config = {
        "kafka": {
            "topics": {
                "payloads": f"{prefix}.payloads",
                "detections": f"{prefix}.detections",
                "deadletter": f"{prefix}.deadletter",
            }
        },
        "ingest": {"host": "127.0.0.1", "port": port_or_free(8080)},
        "worker": {
            "group_id": prefix,
            "metrics_host": "127.0.0.1",
            "metrics_port": port_or_free(8081),
            "state_dir": str(workdir / "state" / "worker"),
            "batch_seconds": 0.5,
        },
        "api": {"host": "127.0.0.1", "port": port_or_free(8082)},
        "store": {"url": f"sqlite:///{workdir / 'infersight.db'}"},
        "detections": {
            "state_uri": str(workdir / "state" / "detectors"),
            "cache_dir": str(workdir / "cache" / "downloads"),
        },
        "models": detectors.models_config(fitted, window),
    }
    path.write_text(
        "# Written by `infersight demo`; run `infersight up --config "
        + str(path)
        + "` to serve it.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    return path


def prepare(options: Options, run_id: str, say: Say) -> tuple[list[Phase], Path]:
    """Train, fit, write the config and plan the traffic."""
    workdir = options.workdir
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    use_legacy_keras()
    wine, digits = data.wine(), data.digits()
    say("training the wine classifier (scikit-learn) and the digits classifier (TensorFlow)")
    wine_model = models.wine_classifier(wine, cache)
    digits_model = models.digits_classifier(digits, cache, options.classifier_epochs)
    fitted = detectors.fit_all(wine, digits, digits_model, cache, options.adversarial_epochs, say)
    config = write_config(workdir, fitted, options.sizes.window, run_id)
    say(f"wrote {config}")
    say("planning the traffic (FGSM attacks on the digits classifier)")
    planner = Planner(run_id, options.sizes, wine, digits, wine_model, digits_model)
    return planner.phases(), config


def _units(phase: Phase, when: datetime) -> list[list[Event]]:
    return [
        list(inference(p.model, p.request_id, p.endpoint, p.row[None, :], [p.prediction], when))  # type: ignore[arg-type]
        for p in phase.inferences
    ]


def _feedback_units(phases: Sequence[Phase], when: datetime) -> list[list[Event]]:
    return [[feedback(p.model, p.request_id, p.label, when)] for phase in phases for p in phase.inferences]


def _record(path: Path, units: Sequence[Sequence[Event]]) -> None:
    with path.open("ab") as output:
        for unit in units:
            for event in unit:
                output.write(event.to_json() + b"\n")


def _wait_for_pipeline(
    settings: Settings, phases: Sequence[Phase], since: datetime, watcher: DetectionWatcher,
    progress: Progress, expected_windows: int, timeout: float,
) -> dict[str, Any]:  # fmt: skip
    """Until the store holds every inference with its label and every drift window was published."""
    from infersight.sinks.store import make_engine

    engine = make_engine(settings.store.url)
    wanted = {p.request_id for phase in phases for p in phase.inferences}
    deadline = time.monotonic() + timeout
    while True:
        stored = read_store(engine, detectors.NAMESPACE, since, wanted)
        labelled = sum(1 for row in stored.values() if row.correct is not None)
        windows = sum(1 for d in watcher.snapshot() if d["kind"] == "drift")
        progress.detail = (
            f"stored {len(stored):,}/{len(wanted):,}, labelled {labelled:,}, "
            f"drift windows {windows}/{expected_windows}"
        )
        done = len(stored) == len(wanted) and labelled == len(wanted) and windows >= expected_windows
        if done or time.monotonic() > deadline:
            return stored
        time.sleep(1.0)


def _fraction(hits: int, total: int) -> str:
    return f"{hits}/{total}" if total else "-"


def table(results: Sequence[PhaseResult]) -> tuple[list[str], list[list[str]]]:
    """The final table: per phase, what was injected and what the pipeline detected."""
    names = sorted({name for r in results for name in r.drift})
    flags = ["outliers\ncaught", "outliers\nfalse", "adversarial\ncaught", "adversarial\nfalse"]
    header = ["phase", "stored", *[f"{n}\nwindows" for n in names], *flags, "accuracy\n(feedback)"]
    rows = []
    for r in results:
        accuracy = f"{r.accuracy:.0%}" if r.accuracy is not None else "-"
        rows.append(
            [r.phase.name, f"{r.stored}/{r.sent}",
             *[_fraction(r.drift[n].detected, r.drift[n].tested) for n in names],
             _fraction(r.outliers.caught, r.outliers.injected),
             _fraction(r.outliers.false_alarms, r.outliers.clean),
             _fraction(r.adversarial.caught, r.adversarial.injected),
             _fraction(r.adversarial.false_alarms, r.adversarial.clean), accuracy]
        )  # fmt: skip
    return header, rows


def drop_topics(settings: Settings, prefix: str) -> None:
    """Delete this run's topics once its stack stopped: the store keeps what they held."""
    from confluent_kafka.admin import AdminClient

    from infersight.kafkaclient import librdkafka_config

    with contextlib.suppress(Exception):
        admin = AdminClient({**librdkafka_config(settings.kafka), "log_level": 0, "error_cb": lambda _: None})
        ours = [topic for topic in admin.list_topics(timeout=10).topics if topic.startswith(prefix)]
        if ours:
            for deleted in admin.delete_topics(ours, operation_timeout=30).values():
                deleted.result()


def _metrics(url: str) -> str:
    try:
        return httpx.get(url, timeout=10.0).text
    except httpx.HTTPError:
        return ""


def run(options: Options, console: Console) -> Outcome:
    """The whole demo; ``console`` shows progress and the live view."""
    started = time.monotonic()
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    options = Options(**{**options.__dict__, "workdir": workdir})

    def say(message: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:5.0f} s[/] {message}", highlight=False)

    run_id = f"run{uuid.uuid4().hex[:8]}"
    phases, config = prepare(options, run_id, say)
    settings = load_settings(options.config or config)
    with ExitStack() as resources:
        if options.ingest_url is None:
            shutil.rmtree(workdir / "state", ignore_errors=True)  # online drift starts afresh
            (workdir / "state" / "worker").mkdir(parents=True)
            log = workdir / "stack.log"
            say(f"starting Kafka (if none runs), the worker, the ingest and the query API; logs in {log}")
            prefix = f"{detectors.NAMESPACE}.{run_id}"
            resources.enter_context(own_stack(settings, config, log, lambda: drop_topics(settings, prefix)))
            ingest_url = f"http://127.0.0.1:{settings.ingest.port}"
        else:
            ingest_url = options.ingest_url.rstrip("/")
            wait_until_answers(f"{ingest_url}/readyz", None, None, timeout=10.0)
        watcher = DetectionWatcher(settings.kafka, detectors.NAMESPACE)
        watcher.start()
        resources.callback(watcher.stop)
        since = datetime.now(UTC) - timedelta(seconds=5)
        recording = workdir / "traffic.jsonl"
        recording.unlink(missing_ok=True)
        progress = Progress()
        for phase in phases:
            progress.planned[phase.name] = 2 * len(phase.inferences)
        progress.planned["feedback"] = sum(len(phase.inferences) for phase in phases)
        wine_total = sum(1 for phase in phases for p in phase.inferences if p.model.name == detectors.WINE)
        expected_windows = 2 * (wine_total // options.sizes.window)
        with Live(
            get_renderable=lambda: render(progress, watcher),
            console=console,
            refresh_per_second=4,
            transient=True,
        ):
            for phase in phases:
                progress.phase = phase.name
                units = _units(phase, datetime.now(UTC))
                _record(recording, units)
                name = phase.name
                send(f"{ingest_url}/", units, concurrency=options.concurrency,
                     on_sent=lambda n, name=name: progress.sent.update({name: n}))  # type: ignore[misc]  # fmt: skip
            progress.phase = "feedback"
            units = _feedback_units(phases, datetime.now(UTC))
            _record(recording, units)
            send(f"{ingest_url}/", units, concurrency=options.concurrency,
                 on_sent=lambda n: progress.sent.update({"feedback": n}))  # fmt: skip
            progress.phase = "waiting for the worker"
            stored = _wait_for_pipeline(
                settings, phases, since, watcher, progress, expected_windows, options.wait_seconds
            )
        detections = watcher.snapshot()
        results = tally(phases, detections, stored)
        header, rows = table(results)
        worker_metrics = f"http://127.0.0.1:{settings.worker.metrics_port}/metrics"
        metrics_text = _metrics(worker_metrics)
        missing = [name for name in EXPECTED_METRICS if name not in metrics_text]
        exports = _export(settings, since, workdir)
        urls = [
            ("ingest (CloudEvents)", f"{ingest_url}/"),
            ("ingest metrics", f"{ingest_url}/metrics"),
            ("worker metrics", worker_metrics),
            ("query API", f"http://127.0.0.1:{settings.api.port}/v1/models"),
            (
                "Grafana dashboards",
                "`infersight dashboards` writes them; point Grafana's Prometheus at the URLs above",
            ),
        ]
        notes = [f"{len(detections)} detection events read from {settings.kafka.topics.detections}",
                 f"traffic recorded in {recording} (replay it with `infersight replay {recording}`)",
                 f"config: {config}"]  # fmt: skip
        reports = _reports(settings, since, workdir, phases, stored, (header, rows), notes)
    return Outcome(
        results, header, rows, reports, exports, urls, missing, metrics_text,
        time.monotonic() - started, phases, detections,
    )  # fmt: skip


def _reports(
    settings: Settings,
    since: datetime,
    workdir: Path,
    phases: Sequence[Phase],
    stored: dict[str, Stored],
    table: tuple[list[str], list[list[str]]],
    notes: list[str],
) -> list[Path]:
    """``infersight report`` for each model over this run, the phases shaded and their table on top."""
    from infersight.sinks.report import ReportRequest, ReportSpan, ReportTable, write_report
    from infersight.sinks.store import make_engine

    # A phase's events may share one time: each phase reaches to the next one's start.
    starts = []
    for phase in phases:
        times = [stored[p.request_id].time for p in phase.inferences if p.request_id in stored]
        if times:
            starts.append((min(times), max(times), f"{phase.name}: {phase.description}"))
    starts.sort()
    spans = [
        ReportSpan(
            label, start, starts[index + 1][0] if index + 1 < len(starts) else last + timedelta(seconds=1)
        )
        for index, (start, last, label) in enumerate(starts)
    ]
    header, rows = table
    summary = ReportTable("What was injected, and what the pipeline detected", header, rows)
    engine = make_engine(settings.store.url)
    written = []
    for model in (detectors.WINE, detectors.DIGITS):
        request = ReportRequest(
            namespace=detectors.NAMESPACE,
            inferenceservice=model,
            since=since,
            tables=[summary],
            notes=notes,
            spans=spans,
        )
        written.append(write_report(engine, request, workdir / f"report-{model}.html", datetime.now(UTC)))
    engine.dispose()
    return written


def _export(settings: Settings, since: datetime, workdir: Path) -> list[tuple[Path, int]]:
    """Retraining sets, one per model: this run's labelled inferences with their flags, as Parquet."""
    from infersight.sinks.export import export
    from infersight.sinks.store import make_engine
    from infersight.sinks.store.filters import PayloadFilter

    engine = make_engine(settings.store.url)
    written = []
    for model in (detectors.WINE, detectors.DIGITS):
        path = workdir / f"retraining-{model}.parquet"
        where = PayloadFilter(
            namespace=detectors.NAMESPACE, inferenceservice=model, since=since, labelled=True
        )
        written.append((path, export(engine, where, path, "parquet").rows))
    return written
