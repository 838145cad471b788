"""Records per second through one worker running KSDrift and IForest, against Seldon's per-event way.

For 4 and 100 features (KServe v1 bodies, one instance per request) the two detectors are first
fitted on 5,000 reference rows drawn from N(0, 1) and saved with ``alibi_detect.saving.save_detector``:
a KSDrift (``p_val`` 0.05, config format) and an IForest (threshold at the reference's 99th
percentile; alibi-detect saves outlier detectors with dill, so the configuration sets
``allow_unsafe_loading``). A fresh payloads topic is then filled with ``--pairs`` request/response
pairs whose values come from the same N(0, 1), so that few are flagged, as ``bench/worker.py``
fills it: 8 models whose keys cover the 6 partitions, each listed in the YAML ``models:`` with the
same two detectors, drift on windows of 1,000 instances. Several models rather than one, because
a worker serves many and each model gets its own drift windows and its own scoring calls.

One ``infersight worker`` process (SQL store off: it has its own benchmark) reads the topic and
publishes the records on a records topic; the clock runs from its first record there until all of
them are there. Its ``/metrics`` give the time spent in detector calls. Every record is read back
to check that it is paired and carries its IForest score, and the detections topic to check that
it holds one drift test per full window of each model and one outlier detection per flagged record.

The baseline, in its own process, reads the same topic with a bare confluent-kafka consumer and does for
each request what Seldon's alibi-detect server does: decode the body (orjson), build the array,
``IForest.predict`` on that one instance, and append the instance to the model's drift batch
(``np.concatenate``), calling ``KSDrift.predict`` when it holds 1,000 (``drift_batch_size``).
Responses are read and skipped, as Seldon's trigger sends its detectors the requests only. The
server's HTTP, logging and response encoding are left out, which only flatters the baseline.

    python bench/detectors.py [--pairs 20000] [--baseline-pairs N]
                              [--bootstrap HOST:PORT] [--json PATH] [--ports LOW-HIGH]

Without ``--bootstrap`` or ``$KAFKA_BOOTSTRAP_SERVERS`` it starts the project's local broker in a
temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml
from common import (
    add_common_arguments,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    run_in_process,
    write_json,
)
from rich.console import Console
from rich.table import Table
from worker import (
    BATCH_SIZE,
    MODELS,
    NAMESPACE,
    PARTITIONS,
    TABLE_WIDTH,
    Case,
    CaseTopics,
    WorkerResult,
    check_records,
    fill,
    log_problems,
    model_names,
    partition_counts,
    read_values,
    time_worker,
    worker_process,
)

from infersight.binding import ATTRIBUTE_PREFIX
from infersight.config import KafkaConfig
from infersight.detectors.loading import use_legacy_keras
from infersight.kafkaclient import ensure_topics
from infersight.records import KSERVE_REQUEST

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "detectors.json"
DEFAULT_PAIRS = 20_000
REFERENCE_ROWS = 5_000
WINDOW = 1_000  # the worker's drift window and Seldon's drift_batch_size
P_VALUE = 0.05
THRESHOLD_PERCENTILE = 99.0
DRIFT, OUTLIER = "ks", "iforest"  # the detectors' names in the configuration
#: Events per ``consume`` call in the baseline. librdkafka heartbeats on its own thread, so a batch
#: (~15 ms an event to score) need only stay within ``max.poll.interval.ms`` (5 minutes).
BASELINE_FETCH = 1000
#: The baseline gives up when no event came for this long.
STALL_SECONDS = 120
#: The aim of the issue: the worker at least this many times the per-event baseline.
AIM = 50
REQUEST_HEADER = (ATTRIBUTE_PREFIX + "type", KSERVE_REQUEST.encode())

console = Console(soft_wrap=True)


@dataclass(frozen=True)
class GaussianCase(Case):
    """KServe v1 bodies whose values come from N(0, 1), the distribution of the reference data."""

    def request_body(self, rng: random.Random) -> bytes:
        return orjson.dumps({"instances": [[round(rng.gauss(0, 1), 4) for _ in range(self.features)]]})


CASES = (GaussianCase("kserve-v1", 4), GaussianCase("kserve-v1", 100))


def case_topics(stamp: str, case: Case) -> CaseTopics:
    """Fresh topic and group names of one case, apart from those of bench/worker.py."""
    prefix = f"bench-detectors-{stamp}-{case.slug}"
    return CaseTopics(
        payloads=f"{prefix}-payloads",
        records=f"{prefix}-records",
        detections=f"{prefix}-detections",
        deadletter=f"{prefix}-deadletter",
        worker_group=f"{prefix}-worker",
        baseline_group=f"{prefix}-baseline",
    )


# --- the detectors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedDetectors:
    """The ``save_detector`` folders the worker and the baseline both load."""

    drift: Path
    outlier: Path


def save_detectors(folder: Path, features: int) -> SavedDetectors:
    """Fit KSDrift and IForest on N(0, 1) reference rows and save both, as a user would ship them."""
    from alibi_detect.cd import KSDrift
    from alibi_detect.od import IForest
    from alibi_detect.saving import save_detector

    logging.getLogger("alibi_detect").setLevel(logging.ERROR)  # "directory created", "no threshold yet"
    reference = np.random.default_rng(features).standard_normal((REFERENCE_ROWS, features))
    reference = reference.astype(np.float32)
    saved = SavedDetectors(drift=folder / DRIFT, outlier=folder / OUTLIER)
    save_detector(KSDrift(reference, p_val=P_VALUE), str(saved.drift))
    outlier = IForest()
    outlier.fit(reference)
    outlier.infer_threshold(reference, threshold_perc=THRESHOLD_PERCENTILE)
    save_detector(outlier, str(saved.outlier))
    return saved


def write_config(path: Path, saved: SavedDetectors, models: list[str]) -> Path:
    """The worker's YAML: every model with the same saved KSDrift and IForest."""
    detectors = [
        {"name": DRIFT, "kind": "drift", "uri": saved.drift.as_uri(), "window": {"size": WINDOW}},
        {"name": OUTLIER, "kind": "outlier", "uri": saved.outlier.as_uri(), "allow_unsafe_loading": True},
    ]
    models_config = [
        {"namespace": NAMESPACE, "inferenceservice": model, "detectors": detectors} for model in models
    ]
    path.write_text(yaml.safe_dump({"models": models_config}), encoding="utf-8")
    return path


def expected_drift_tests(pairs: int, models: int) -> int:
    """Full windows over all models; pairs go to the models in turn, and a part window stays open."""
    return sum((pairs // models + (index < pairs % models)) // WINDOW for index in range(models))


# --- the worker ------------------------------------------------------------------------------------


@dataclass
class DetectorChecks:
    """What the records and detections topics hold, and the worker's time in detector calls."""

    expected_records: int
    expected_drift_tests: int
    scored: int = 0  # records carrying one IForest score for their one instance
    flagged: int = 0
    drift_tests: int = 0
    drift_detected: int = 0
    odd_windows: int = 0  # drift tests over other than WINDOW instances
    outlier_detections: int = 0
    other_detections: int = 0
    detector_seconds: dict[str, float] = field(default_factory=dict)
    detector_calls: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.scored == self.expected_records
            and self.drift_tests == self.expected_drift_tests
            and self.odd_windows == 0
            and self.outlier_detections == self.flagged
            and self.other_detections == 0
        )

    def share(self, records_per_s: float) -> float:
        """Detector seconds per record times records per second: the worker's time in detectors."""
        return sum(self.detector_seconds.values()) / self.expected_records * records_per_s


def detector_durations(port: int) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds in and calls of each detector, summed over the models, from the worker's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "infersight_detector_duration_seconds":
            continue
        for sample in family.samples:
            detector = sample.labels["detector"]
            if sample.name.endswith("_sum"):
                seconds[detector] += sample.value
            elif sample.name.endswith("_count"):
                calls[detector] += int(sample.value)
    return dict(seconds), dict(calls)


def check_scores(values: list[bytes], checks: DetectorChecks) -> None:
    """Count the records that carry their IForest score, and those it flagged."""
    for value in values:
        scores = [score for score in orjson.loads(value).get("scores") or () if score["detector"] == OUTLIER]
        if len(scores) == 1 and len(scores[0]["scores"]) == 1 and scores[0]["threshold"] is not None:
            checks.scored += 1
            checks.flagged += any(scores[0]["flags"])


def check_detections(values: list[bytes], checks: DetectorChecks) -> None:
    """Count drift tests (and their window sizes) and outlier detections on the detections topic."""
    for value in values:
        data = orjson.loads(value)
        if data["kind"] == "drift" and data["detector"] == DRIFT:
            checks.drift_tests += 1
            checks.drift_detected += bool(data["detected"])
            checks.odd_windows += data["window"]["instances"] != WINDOW
        elif data["kind"] == "outlier" and data["detector"] == OUTLIER:
            checks.outlier_detections += 1
        else:
            checks.other_detections += 1


def measure_worker(
    bootstrap: str,
    topics: CaseTopics,
    case: Case,
    pairs: int,
    metrics_port: int,
    tmp: Path,
    config: Path,
) -> tuple[WorkerResult, DetectorChecks]:
    """One worker with the detectors on the pre-filled topic, timed; then both topics checked."""
    log_path = tmp / f"worker-{case.slug}.log"
    env = {
        "INFERSIGHT_CONFIG": str(config),
        "INFERSIGHT_DETECTIONS__STATE_URI": str(tmp / f"detector-state-{case.slug}"),
        "INFERSIGHT_DETECTIONS__CACHE_DIR": str(tmp / f"detector-cache-{case.slug}"),
        "TF_USE_LEGACY_KERAS": "1",
    }
    state = tmp / f"state-{case.slug}"
    with worker_process(bootstrap, topics, metrics_port, state, log_path, env) as process:
        startup, first_seen, duration, cpu = time_worker(process, bootstrap, topics.records, pairs, log_path)
        seconds, calls = detector_durations(metrics_port)
    result = WorkerResult(
        expected=pairs, startup_s=startup, first_seen=first_seen, duration_s=duration, cpu_share=cpu
    )
    checks = DetectorChecks(
        expected_records=pairs,
        expected_drift_tests=expected_drift_tests(pairs, MODELS),
        detector_seconds=seconds,
        detector_calls=calls,
    )
    records = read_values(bootstrap, topics.records)
    check_records(records, case, result)
    check_scores(records, checks)
    check_detections(read_values(bootstrap, topics.detections), checks)
    result.deadletters = sum(partition_counts(bootstrap, topics.deadletter).values())
    result.log_problems = log_problems(log_path)
    return result, checks


# --- the baseline, in its own process --------------------------------------------------------------


@dataclass
class SeldonFigures:
    """The per-event baseline: requests scored, from partition assignment to the last event."""

    events: int = 0
    requests: int = 0
    duration_s: float = 0.0
    outlier_s: float = 0.0
    drift_s: float = 0.0
    flagged: int = 0
    drift_tests: int = 0
    drift_detected: int = 0

    @property
    def records_per_s(self) -> float:
        return self.requests / self.duration_s

    @property
    def detector_share(self) -> float:
        return (self.outlier_s + self.drift_s) / self.duration_s


class SeldonStyle:
    """What Seldon's alibi-detect server does with each request event, minus HTTP and logging.

    Its outlier server predicts on each request as it comes; its drift server appends each to a
    batch with ``np.concatenate`` and tests the batch at ``drift_batch_size``. Seldon runs one
    server per model, so each model (Kafka key) has its batch here.
    """

    def __init__(self, drift: Any, outlier: Any) -> None:
        self.drift = drift
        self.outlier = outlier
        self.batches: dict[bytes, np.ndarray[Any, Any] | None] = {}
        self.figures = SeldonFigures()

    def handle(self, message: Any) -> None:
        if REQUEST_HEADER not in (message.headers() or ()):
            return
        figures = self.figures
        figures.requests += 1
        key = message.key()
        x = np.array(orjson.loads(message.value())["instances"])
        started = time.perf_counter()
        scored = self.outlier.predict(x, return_instance_score=True)["data"]
        figures.outlier_s += time.perf_counter() - started
        figures.flagged += int(np.sum(scored["is_outlier"]))
        batch = self.batches.get(key)
        batch = x if batch is None else np.concatenate((batch, x))
        if batch.shape[0] >= WINDOW:
            started = time.perf_counter()
            tested = self.drift.predict(batch)["data"]
            figures.drift_s += time.perf_counter() - started
            figures.drift_tests += 1
            figures.drift_detected += int(tested["is_drift"])
            batch = None
        self.batches[key] = batch


def consume_all(
    bootstrap: str, topic: str, group: str, expected: int, handle: Callable[[Any], None]
) -> tuple[int, float]:
    """Read ``expected`` events with one consumer, handing each to ``handle`` as it comes.

    Returns the events read and the seconds from partition assignment to the last.
    """
    from confluent_kafka import Consumer

    assigned_at: list[float] = []

    def on_assign(_consumer: Any, _partitions: Any) -> None:
        if not assigned_at:
            assigned_at.append(time.perf_counter())

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic], on_assign=on_assign)
    try:
        count, last_growth = 0, time.perf_counter()
        while count < expected:
            wanted = min(BASELINE_FETCH, expected - count)
            messages = [m for m in consumer.consume(wanted, timeout=1.0) if m.error() is None]
            for message in messages:
                handle(message)
            count += len(messages)
            if messages:
                last_growth = time.perf_counter()
            elif time.perf_counter() - last_growth > STALL_SECONDS:
                raise RuntimeError(f"the baseline stalled at {count:,} of {expected:,} events")
        finished = time.perf_counter()
    finally:
        consumer.close()
    return count, finished - assigned_at[0]


def run_seldon_style(
    bootstrap: str, topic: str, group: str, events: int, saved: SavedDetectors
) -> SeldonFigures:
    """Load the saved detectors (before the clock starts), then handle ``events`` events one by one."""
    from alibi_detect.saving import load_detector

    style = SeldonStyle(
        load_detector(str(saved.drift)), load_detector(str(saved.outlier), enable_unsafe_loading=True)
    )
    figures = style.figures
    figures.events, figures.duration_s = consume_all(bootstrap, topic, group, events, style.handle)
    return style.figures


def baseline_process(
    bootstrap: str, topic: str, group: str, events: int, saved: SavedDetectors, results: Queue[SeldonFigures]
) -> None:
    """Entry point of the baseline process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process
    use_legacy_keras()
    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    results.put(run_seldon_style(bootstrap, topic, group, events, saved))


# --- report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    case: Case
    prefill_s: float
    partitions: dict[int, int]
    worker: WorkerResult
    checks: DetectorChecks
    baseline: SeldonFigures

    @property
    def ratio(self) -> float:
        return self.worker.records_per_s / self.baseline.records_per_s

    @property
    def ok(self) -> bool:
        return self.worker.all_paired and self.checks.ok

    def figures(self) -> dict[str, Any]:
        worker, checks, base = self.worker, self.checks, self.baseline
        return {
            "case": self.case.name,
            "protocol": self.case.protocol,
            "features": self.case.features,
            "prefill_s": self.prefill_s,
            "events_per_partition": self.partitions,
            "worker": {
                **asdict(worker),
                "records_per_s": worker.records_per_s,
                "all_paired": worker.all_paired,
                "detector_share": checks.share(worker.records_per_s),
            },
            "detections": {**asdict(checks), "ok": checks.ok},
            "baseline": {
                **asdict(base),
                "records_per_s": base.records_per_s,
                "detector_share": base.detector_share,
            },
            "ratio_worker_to_baseline": self.ratio,
        }


def report(results: list[CaseResult]) -> None:
    table = Table(title="One worker with KSDrift (window 1,000) and IForest, against one call per event")
    table.add_column("case", no_wrap=True)
    table.add_column("worker\nrecords/s", justify="right")
    table.add_column("worker\nCPU", justify="right")
    table.add_column("baseline\nrecords/s", justify="right")
    table.add_column("worker ÷\nbaseline", justify="right")
    table.add_column("in detectors\nworker / base", justify="right", no_wrap=True)
    table.add_column("drift tests\n(drift)", justify="right", no_wrap=True)
    table.add_column("flagged\nworker / base", justify="right", no_wrap=True)
    table.add_column("checks", justify="right")
    for result in results:
        worker, checks, base = result.worker, result.checks, result.baseline
        aim = "green" if result.ratio >= AIM else "yellow"
        table.add_row(
            result.case.name,
            f"{worker.records_per_s:,.0f}",
            "?" if worker.cpu_share is None else f"{worker.cpu_share:.0%}",
            f"{base.records_per_s:,.1f}",
            f"[{aim}]{result.ratio:,.0f}x[/]",
            f"{checks.share(worker.records_per_s):.0%} / {base.detector_share:.0%}",
            f"{checks.drift_tests}/{checks.expected_drift_tests} ({checks.drift_detected})",
            f"{checks.flagged:,} / {base.flagged:,}",
            "[green]ok[/]" if result.ok else "[red]failed[/]",
        )
    Console(width=max(console.width, TABLE_WIDTH + 20)).print(table)  # a pipe gets 80 columns: too few
    for result in results:
        explain(result)


def explain(result: CaseResult) -> None:
    """What went wrong in a case, and what the worker logged beyond info."""
    worker, checks, name = result.worker, result.checks, result.case.name
    calls = checks.detector_calls.get(OUTLIER)
    if calls:
        console.print(f"{name}: the worker scored {worker.expected / calls:,.0f} records per IForest call")
    if not worker.all_paired:
        console.print(
            f"[red]{name}[/]: {worker.records:,} records, modes {worker.modes}, "
            f"{worker.distinct_ids:,} distinct ids, {worker.wrong_shape:,} with the wrong shape, "
            f"{worker.deadletters:,} dead letters"
        )
    if not checks.ok:
        console.print(
            f"[red]{name}[/]: {checks.scored:,} of {checks.expected_records:,} records scored, "
            f"{checks.drift_tests} of {checks.expected_drift_tests} drift tests ({checks.odd_windows} "
            f"not over {WINDOW} instances), {checks.outlier_detections:,} outlier detections for "
            f"{checks.flagged:,} flagged records, {checks.other_detections} other detections"
        )
    for line in worker.log_problems:
        console.print(f"[yellow]{name} worker log:[/] {line}", highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pairs",
        type=int,
        default=DEFAULT_PAIRS,
        help=f"request/response pairs per case (default {DEFAULT_PAIRS:,})",
    )
    parser.add_argument(
        "--baseline-pairs",
        type=int,
        default=None,
        metavar="N",
        help="let the baseline score only the first N requests (default: all; it does some 50 a second)",
    )
    add_common_arguments(parser, DEFAULT_JSON, "workers' metrics")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.baseline_pairs is not None and not 1 <= args.baseline_pairs <= args.pairs:
        parser.error("--baseline-pairs must be between 1 and --pairs")
    return args


def run_case(
    bootstrap: str, case: Case, args: argparse.Namespace, stamp: str, metrics_port: int, tmp: Path
) -> CaseResult:
    pairs = args.pairs
    topics = case_topics(stamp, case)
    kafka = KafkaConfig.model_validate({"bootstrap_servers": bootstrap, "partitions": PARTITIONS})
    ensure_topics(kafka, [topics.payloads, topics.records, topics.detections, topics.deadletter])
    console.rule(case.name)
    console.print(f"fitting and saving KSDrift and IForest on {REFERENCE_ROWS:,} reference rows …")
    saved = save_detectors(tmp / f"detectors-{case.slug}", case.features)
    config = write_config(tmp / f"infersight-{case.slug}.yaml", saved, model_names(MODELS, PARTITIONS))
    console.print(f"pre-filling {topics.payloads} with {pairs:,} pairs …")
    started = time.perf_counter()
    fill(bootstrap, topics.payloads, case, pairs, stamp, PARTITIONS)
    prefill_s = time.perf_counter() - started
    partitions = partition_counts(bootstrap, topics.payloads)
    if sum(partitions.values()) != 2 * pairs or not all(partitions.values()):
        raise SystemExit(f"the payloads topic holds {partitions} events per partition, not {2 * pairs:,}")
    console.print(f"worker with {MODELS} models, each with KSDrift and IForest, batches of {BATCH_SIZE} …")
    worker, checks = measure_worker(bootstrap, topics, case, pairs, metrics_port, tmp, config)
    console.print(
        f"worker: {worker.records_per_s:,.0f} records/s (started in {worker.startup_s:.1f}s); "
        "the per-event baseline …"
    )
    events = 2 * (args.baseline_pairs or pairs)
    baseline: SeldonFigures = run_in_process(
        baseline_process, (bootstrap, topics.payloads, topics.baseline_group, events, saved), "baseline"
    )
    return CaseResult(case, prefill_s, partitions, worker, checks, baseline)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    use_legacy_keras()  # before anything imports alibi-detect, here and in the baseline process
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    broker_port, controller_port, *metrics_ports = free_ports(2 + len(CASES), *port_range(args.ports))
    results: list[CaseResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="infersight-bench-detectors-") as tmp,
        kafka_broker(args.bootstrap, Path(tmp) / "kafka", [broker_port, controller_port]) as bootstrap,
    ):
        for case, metrics_port in zip(CASES, metrics_ports, strict=True):
            results.append(run_case(bootstrap, case, args, stamp, metrics_port, Path(tmp)))
    report(results)
    write_json(
        args.json,
        {
            "cases": [result.figures() for result in results],
            "config": {
                "pairs": args.pairs,
                "baseline_pairs": args.baseline_pairs or args.pairs,
                "partitions": PARTITIONS,
                "models": MODELS,
                "batch_size": BATCH_SIZE,
                "window": WINDOW,
                "p_val": P_VALUE,
                "reference_rows": REFERENCE_ROWS,
                "threshold_percentile": THRESHOLD_PERCENTILE,
                "baseline_fetch": BASELINE_FETCH,
                "local_broker": not args.bootstrap,
                "cpus": os.cpu_count(),
                "started": stamp,
            },
        },
    )
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
