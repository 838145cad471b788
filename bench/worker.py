"""Events/s and CPU per event of one ``infersight worker`` process, each against a same-run baseline.

Every figure is measured on a topic of 4 partitions filled first with request/response pairs,
written the way the ingest writes them (``ce_*`` headers from ``infersight.binding.to_kafka_headers``,
key ``namespace/inferenceservice``, the response right after its request; 8 models whose keys
cover every partition), so that the consumer is measured, not the producer. An event is one Kafka
record (a request or a response): events = 2 x inferences.

1. Baseline: a bare confluent-kafka consumer (``Consumer.consume(1000)``, fresh group,
   ``fetch.queue.backoff.ms=10`` as the worker's) in its own process reads the topic to its end,
   decoding nothing: events/s and CPU µs per event (the process's CPU time over the events).
2. ``infersight worker`` with no detectors and no store: events/s and CPU µs per event of the
   worker process (``/proc/PID/stat``: all its threads, librdkafka's included). Also for Open
   Inference Protocol v2 bodies, against the bare consumer on that topic.
3. The same with the SQLite store, against a hand-written consumer in its own process that pairs
   requests with responses in a dict and inserts the rows (request id, namespace,
   inferenceservice, request body, response body) with ``executemany``, one commit per fetch.
   The store's row count is checked against the inferences.
4. KSDrift (windows of 1,000) and IForest on each of the 8 models, SQLite store, against the
   hand-written consumer of 3 that also scores each fetch's new requests with IForest, model by
   model, and tests each model's drift window with KSDrift when it holds 1,000.

How the worker's clock runs, without a records topic to watch (publishing every record would
cost more than what is measured): the bench polls the worker group's committed offsets
(``Consumer.committed`` from a client that joins no group) every ``COMMIT_POLL_SECONDS``. The
worker commits after each ``BATCH_SIZE`` events (the sizes here are multiples of it, so the last
commit follows the last event at once) and only after its store writes, so the clock runs from
the first commit seen until the committed offsets reach the topic's end offsets, and the events
committed at that first sight are left out of the rate. The baselines likewise run from their
first fetch to their last event (the first fetch left out). Where the first commit seen is
already the last (tiny runs), the clock starts at ``/readyz`` instead.

Correctness: a separate small pass (``--check-pairs``) runs the worker with
``INFERSIGHT_WORKER__RECORDS_TOPIC`` set and reads every record back: each inference once, as
``paired``. The timed runs are checked too: their ``infersight_records_total`` counts every
inference as paired, and the store holds one row (request and response) for each.

    python bench/worker.py [--quick] [--cases no-store,v2,store,detectors] [--events N]
                           [--detector-events N] [--check-pairs N]
                           [--profile PATH] [--profile-case no-store|store]
                           [--bootstrap HOST:PORT] [--json PATH] [--ports LOW-HIGH]

``--profile PATH`` records the no-store worker (or the store's, with ``--profile-case store``)
with py-spy from its first commit (its figures then say so): a flame graph, or raw stacks and
the top functions by own time for ``.txt``. Without ``--bootstrap`` or ``$KAFKA_BOOTSTRAP_SERVERS``
it starts the project's local broker in a temporary folder and stops it at the end.

The helpers above the line ``--- this benchmark`` (``Case``, ``fill``, ``worker_process``,
``time_worker``, ``check_records``, ...) are shared with ``bench/detectors.py`` and ``bench/soak.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import orjson
from common import (
    Profiler,
    add_common_arguments,
    cpu_seconds,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    run_in_process,
    write_json,
)
from rich.console import Console
from rich.table import Table

from infersight.binding import ATTRIBUTE_PREFIX, to_kafka_headers
from infersight.config import KafkaConfig
from infersight.kafkaclient import ensure_topics
from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE
from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "worker.json"
#: The partitions of the topics of bench/detectors.py and bench/soak.py, which import it from here.
PARTITIONS = 6
#: The partitions of this benchmark's topics.
TOPIC_PARTITIONS = 4
MODELS = 8
NAMESPACE = "bench"
#: Events per worker checkpoint (``worker.batch_size``, its default); sizes here are multiples of it.
BATCH_SIZE = 2000
PAIRING_TIMEOUT_SECONDS = 600
#: How often time_worker (bench/detectors.py) looks at the records topic.
POLL_SECONDS = 0.2
#: How often the committed offsets of a timed worker are read.
COMMIT_POLL_SECONDS = 0.05
#: Give up when the committed offsets (or a baseline's count) have not grown for this long.
STALL_SECONDS = 120
#: A worker (with TensorFlow and the detectors to load) must answer /readyz within this.
START_TIMEOUT_SECONDS = 240
#: Events per ``consume`` call of every baseline.
FETCH = 1000
TABLE_WIDTH = 100
DEFAULT_EVENTS = 300_000
DEFAULT_DETECTOR_EVENTS = 100_000
DEFAULT_CHECK_PAIRS = 1_000
QUICK_EVENTS = 4_000
QUICK_CHECK_PAIRS = 500
#: What the project aims at, events/s of one worker process.
AIM_NO_STORE = 30_000
AIM_STORE = 20_000
AIM_DETECTORS = 10_000
#: The detectors of case 4: a drift window of this many instances, reference rows to fit on.
WINDOW = 1_000
REFERENCE_ROWS = 5_000
P_VALUE = 0.05
THRESHOLD_PERCENTILE = 99.0
DRIFT, OUTLIER = "ks", "iforest"
PROFILE_SECONDS = 10
#: The cases that ``--cases`` picks from.
CHOICES = ("no-store", "v2", "store", "detectors")
#: Log lines worth reporting: anything above info, and tracebacks.
LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
#: TensorFlow's start-up notice on stderr, no problem of the worker's.
LOG_NOISE = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\)")

console = Console(soft_wrap=True)


@dataclass(frozen=True)
class Case:
    """One body shape: a protocol and a number of features per instance (values from U(-10, 10))."""

    protocol: str  # "kserve-v1" or "oip-v2"
    features: int

    @property
    def name(self) -> str:
        return f"{self.protocol} F={self.features}"

    @property
    def slug(self) -> str:
        return f"{self.protocol}-f{self.features}"

    def request_body(self, rng: random.Random) -> bytes:
        values = [round(rng.uniform(-10, 10), 4) for _ in range(self.features)]
        if self.protocol == "kserve-v1":
            return orjson.dumps({"instances": [values]})
        tensor = {"name": "input-0", "shape": [1, self.features], "datatype": "FP32", "data": values}
        return orjson.dumps({"inputs": [tensor]})

    def response_body(self, rng: random.Random, model: str, event_id: str) -> bytes:
        label = rng.randrange(3)
        if self.protocol == "kserve-v1":
            return orjson.dumps({"predictions": [label]})
        tensor = {"name": "output-0", "shape": [1], "datatype": "INT64", "data": [label]}
        return orjson.dumps({"model_name": model, "id": event_id, "outputs": [tensor]})


V1 = Case("kserve-v1", 4)
V2 = Case("oip-v2", 4)


@dataclass(frozen=True)
class CaseTopics:
    """The topics and consumer groups of one case; every name is fresh for each run."""

    payloads: str
    records: str
    detections: str
    deadletter: str
    worker_group: str
    baseline_group: str

    @classmethod
    def fresh(cls, stamp: str, case: Case, what: str = "") -> CaseTopics:
        prefix = f"bench-worker-{stamp}-{case.slug}{f'-{what}' if what else ''}"
        return cls(
            payloads=f"{prefix}-payloads",
            records=f"{prefix}-records",
            detections=f"{prefix}-detections",
            deadletter=f"{prefix}-deadletter",
            worker_group=f"{prefix}-worker",
            baseline_group=f"{prefix}-baseline",
        )


@dataclass
class WorkerResult:
    """A worker run timed on its records topic (bench/detectors.py), and what that topic held."""

    expected: int
    startup_s: float  # from launch to its first record on the records topic
    first_seen: int  # records already on the topic at that first sighting, left out of the rate
    duration_s: float  # from the first sighting until ``expected`` records were there
    cpu_share: float | None  # the worker's CPU seconds over those seconds (1.0: one core busy)
    records: int = 0
    paired: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    distinct_ids: int = 0
    wrong_shape: int = 0
    deadletters: int = 0
    log_problems: list[str] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        return (self.expected - self.first_seen) / self.duration_s if self.duration_s else 0.0

    @property
    def all_paired(self) -> bool:
        return (
            self.records == self.expected
            and self.paired == self.expected
            and self.distinct_ids == self.expected
            and self.wrong_shape == 0
            and self.deadletters == 0
        )


# --- processes ------------------------------------------------------------------------------------


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def worker_process(
    bootstrap: str,
    topics: CaseTopics,
    metrics_port: int,
    state_dir: Path,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    partitions: int = PARTITIONS,
    records_topic: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``infersight worker`` on the case's topics; stop it (SIGTERM, wait) on the way out.

    The SQL store is off and records go to ``topics.records`` (unless ``records_topic`` is
    false); ``extra_env`` adds or overrides settings.
    """
    env = {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topics.payloads,
        "INFERSIGHT_KAFKA__TOPICS__DETECTIONS": topics.detections,
        "INFERSIGHT_KAFKA__TOPICS__DEADLETTER": topics.deadletter,
        "INFERSIGHT_KAFKA__PARTITIONS": str(partitions),
        "INFERSIGHT_WORKER__GROUP_ID": topics.worker_group,
        "INFERSIGHT_WORKER__RECORDS_TOPIC": topics.records,
        "INFERSIGHT_WORKER__BATCH_SIZE": str(BATCH_SIZE),
        "INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS": str(PAIRING_TIMEOUT_SECONDS),
        "INFERSIGHT_WORKER__STATE_DIR": str(state_dir),
        "INFERSIGHT_WORKER__METRICS_HOST": "127.0.0.1",
        "INFERSIGHT_WORKER__METRICS_PORT": str(metrics_port),
        "INFERSIGHT_STORE__ENABLED": "false",
        **(extra_env or {}),
    }
    if not records_topic:
        del env["INFERSIGHT_WORKER__RECORDS_TOPIC"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infersight", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop(process, timeout=30)


def log_problems(path: Path, keep: int = 8) -> list[str]:
    """Warning, error and traceback lines of a log, alike ones (numbers aside) counted once."""
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        if LOG_PROBLEM.search(line) and not LOG_NOISE.search(line):
            text = re.sub(r"^(?:\[[\d\- :,.]+\]\s*)+", "", line).strip()[:200]  # time and pid
            shape = re.sub(r"\d+", "N", text)
            counts[shape] += 1
            examples.setdefault(shape, text)
    return [f"{count} x {examples[shape]}" for shape, count in counts.most_common(keep)]


# --- Kafka ----------------------------------------------------------------------------------------


def partition_of_key(key: bytes, partitions: int) -> int:
    """The partition Java's murmur2 partitioner (kafka-python's, librdkafka's ``murmur2``) gives ``key``."""
    from kafka.partitioner.default import murmur2

    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


def model_names(count: int, partitions: int) -> list[str]:
    """``count`` model names whose keys cover every partition, no partition holding two more than another."""
    names: list[str] = []
    per_partition: Counter[int] = Counter()
    most = -(-count // partitions)
    candidate = 0
    while len(names) < count:
        name = f"model-{candidate}"
        candidate += 1
        partition = partition_of_key(f"{NAMESPACE}/{name}".encode(), partitions)
        covered = len(per_partition) == partitions
        if per_partition[partition] == 0 or (covered and per_partition[partition] < most):
            names.append(name)
            per_partition[partition] += 1
        if candidate > 10_000:
            raise SystemExit("could not spread the model keys over every partition")
    return names


def kserve_attributes(event_type: str, event_id: str, model: str, sent: str) -> dict[str, str]:
    """What a KServe logger sends as ``ce-*`` headers, as the ingest keeps them."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "http://localhost:9081/",
        "type": event_type,
        "time": sent,
        "inferenceservicename": model,
        "namespace": NAMESPACE,
        "endpoint": "default",
        "datacontenttype": "application/json",
    }


def events_of(
    case: Case, pairs: int, stamp: str, partitions: int
) -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """Key, body and headers of each event: ``pairs`` requests, each followed by its response."""
    rng = random.Random(f"{case.slug}-{pairs}")
    models = model_names(MODELS, partitions)
    for n in range(pairs):
        model = models[n % len(models)]
        event_id = f"{stamp}-{case.slug}-{n}"
        key = f"{NAMESPACE}/{model}".encode()
        sent = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        halves = (
            (KSERVE_REQUEST, case.request_body(rng)),
            (KSERVE_RESPONSE, case.response_body(rng, model, event_id)),
        )
        for event_type, body in halves:
            yield key, body, to_kafka_headers(kserve_attributes(event_type, event_id, model, sent))


def fill(bootstrap: str, topic: str, case: Case, pairs: int, stamp: str, partitions: int) -> None:
    """``pairs`` requests, each followed by its response, as the ingest writes them (murmur2 partitioner)."""
    from confluent_kafka import KafkaException, Producer

    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
        }
    )
    for key, body, headers in events_of(case, pairs, stamp, partitions):
        while True:
            try:
                producer.produce(topic, value=body, key=key, headers=headers, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) or failures:
        raise KafkaException(f"filling {topic}: {len(failures)} deliveries failed, e.g. {failures[:1]}")


def partition_counts(bootstrap: str, topic: str) -> dict[int, int]:
    """Records in each partition of ``topic``: end offsets minus beginning offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        beginnings = consumer.beginning_offsets(partitions)
        return {tp.partition: ends[tp] - beginnings[tp] for tp in partitions}
    finally:
        consumer.close()


class RecordCounter:
    """Counts the records in a topic from its end offsets, with one long-lived client."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        numbers = self.consumer.partitions_for_topic(topic) or range(PARTITIONS)
        self.partitions = [TopicPartition(topic, p) for p in numbers]

    def count(self) -> int:
        return int(sum(self.consumer.end_offsets(self.partitions).values()))

    def close(self) -> None:
        self.consumer.close()


def read_values(bootstrap: str, topic: str, timeout_s: float = 120) -> list[bytes]:
    """Every record value in ``topic``, read from the beginning to the end offsets of now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise SystemExit(f"could not read {topic} to its end within {timeout_s:.0f}s")
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(record.value for record in batch)
        return values
    finally:
        consumer.close()


def time_worker(
    process: subprocess.Popen[bytes], bootstrap: str, topic: str, expected: int, log_path: Path
) -> tuple[float, int, float, float | None]:
    """Poll the records topic: start-up seconds, records at first sight, timed seconds, CPU share."""
    launched = time.perf_counter()
    counter = RecordCounter(bootstrap, topic)
    try:
        first: tuple[float, int] | None = None
        first_cpu: float | None = None
        last_count, last_growth = 0, launched
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the worker exited with {process.returncode}:\n{log_tail(log_path)}")
            count = counter.count()
            now = time.perf_counter()
            if count and first is None:
                first, first_cpu = (now, count), cpu_seconds(process.pid)
            if count >= expected:
                last_cpu = cpu_seconds(process.pid)
                break
            if count > last_count:
                last_count, last_growth = count, now
            elif now - last_growth > STALL_SECONDS:
                raise SystemExit(
                    f"the records topic stalled at {count:,} of {expected:,} records "
                    f"for {STALL_SECONDS}s:\n{log_tail(log_path)}"
                )
            time.sleep(POLL_SECONDS)
    finally:
        counter.close()
    assert first is not None
    duration = now - first[0]
    share = None if first_cpu is None or last_cpu is None else (last_cpu - first_cpu) / duration
    return first[0] - launched, first[1], duration, share


def check_records(values: list[bytes], case: Case, result: WorkerResult) -> None:
    """Count modes and distinct request ids; check each request tensor has the case's shape."""
    modes: Counter[str] = Counter()
    ids: set[str] = set()
    for value in values:
        record = orjson.loads(value)
        modes[record["mode"]] += 1
        ids.add(record["request_id"])
        request = record.get("request") or {}
        tensors = request.get("tensors") or [{}]
        if request.get("protocol") != case.protocol or tensors[0].get("shape") != [1, case.features]:
            result.wrong_shape += 1
    result.records = len(values)
    result.modes = dict(modes)
    result.paired = modes["paired"]
    result.distinct_ids = len(ids)


# --- this benchmark: the worker, timed by its committed offsets -------------------------------------


@dataclass
class Timed:
    """One timed run, of the worker or of a baseline: events in the timed span, its seconds and CPU."""

    events: int  # events in the timed span (those before its start left out)
    duration_s: float
    cpu_s: float | None
    total_events: int = 0  # every event the run read
    startup_s: float = 0.0  # from launch to the start of the clock
    started_by: str = "first fetch"  # what started the clock
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float | None:
        return None if self.cpu_s is None or not self.events else self.cpu_s / self.events * 1e6

    def figures(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_s": self.events_per_s, "cpu_us_per_event": self.cpu_us_per_event}


@dataclass(frozen=True)
class Topic:
    """A filled payloads topic: its name, its case, and the end offset of each partition."""

    name: str
    case: Case
    pairs: int
    ends: dict[int, int]

    @property
    def events(self) -> int:
        return sum(self.ends.values())


class CommittedOffsets:
    """A group's committed offsets on one topic, read by a client that joins no group."""

    def __init__(self, bootstrap: str, group: str, topic: Topic) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self.partitions = [TopicPartition(topic.name, partition) for partition in topic.ends]

    def total(self) -> int:
        """Events committed over all partitions (a partition with no commit counts 0)."""
        return sum(max(0, tp.offset) for tp in self.consumer.committed(self.partitions, timeout=10))

    def close(self) -> None:
        self.consumer.close()


def is_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The worker's /metrics: each sample's value by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def summed(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, by: str
) -> dict[str, float]:
    """A metric's samples summed over every label but ``by``."""
    totals: dict[str, float] = {}
    for labels, value in samples.get(name, {}).items():
        label = dict(labels).get(by, "")
        totals[label] = totals.get(label, 0.0) + value
    return totals


def time_by_commits(
    process: subprocess.Popen[bytes],
    bootstrap: str,
    group: str,
    topic: Topic,
    port: int,
    log_path: Path,
    profiler: Profiler | None = None,
) -> Timed:
    """Wait for /readyz, then poll the committed offsets until they reach the topic's end.

    ``profiler`` starts at the first commit seen.
    """
    launched = time.perf_counter()
    deadline = launched + START_TIMEOUT_SECONDS
    while not is_ready(port):
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode}:\n{log_tail(log_path)}")
        if time.perf_counter() > deadline:
            raise SystemExit(
                f"the worker was not ready after {START_TIMEOUT_SECONDS}s:\n{log_tail(log_path)}"
            )
        time.sleep(COMMIT_POLL_SECONDS)
    ready = (time.perf_counter(), cpu_seconds(process.pid))
    offsets = CommittedOffsets(bootstrap, group, topic)
    total = topic.events
    try:
        first: tuple[float, float | None, int] | None = None
        last_count, last_growth = 0, time.perf_counter()
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the worker exited with {process.returncode}:\n{log_tail(log_path)}")
            count = offsets.total()
            now, cpu = time.perf_counter(), cpu_seconds(process.pid)
            if count >= total:
                break
            if count and first is None:
                first = (now, cpu, count)
                if profiler is not None:
                    profiler.start(process.pid)
            if count > last_count:
                last_count, last_growth = count, now
            elif now - last_growth > STALL_SECONDS:
                raise SystemExit(
                    f"the committed offsets stalled at {count:,} of {total:,} events "
                    f"for {STALL_SECONDS}s:\n{log_tail(log_path)}"
                )
            time.sleep(COMMIT_POLL_SECONDS)
    finally:
        offsets.close()
    started_by = "first commit"
    if first is None:  # everything was committed at once: time it from /readyz
        first, started_by = (ready[0], ready[1], 0), "/readyz"
    start, start_cpu, before = first
    return Timed(
        events=total - before,
        duration_s=now - start,
        cpu_s=None if cpu is None or start_cpu is None else cpu - start_cpu,
        total_events=total,
        startup_s=start - launched,
        started_by=started_by,
    )


@dataclass
class WorkerRun:
    """A timed worker and what it left behind."""

    name: str
    timed: Timed
    modes: dict[str, float]
    inferences: int
    rows: int | None = None  # rows in the store holding both halves
    all_rows: int | None = None
    detections: dict[str, float] = field(default_factory=dict)
    deadletters: int = 0
    log_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        paired = (
            self.modes.get("paired", 0) == self.inferences and sum(self.modes.values()) == self.inferences
        )
        stored = self.rows is None or (self.rows == self.inferences and self.all_rows == self.inferences)
        return paired and stored and self.deadletters == 0

    def figures(self) -> dict[str, Any]:
        return {**asdict(self), "timed": self.timed.figures(), "ok": self.ok}


def store_rows(path: Path) -> tuple[int, int]:
    """Rows in the store's inferences table: all of them, and those with both halves."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        row = connection.execute(
            "SELECT count(*), coalesce(sum(request_body IS NOT NULL AND response_body IS NOT NULL), 0)"
            " FROM inferences"
        ).fetchone()
    return int(row[0]), int(row[1])


def measure_worker(
    name: str,
    bootstrap: str,
    topic: Topic,
    stamp: str,
    port: int,
    tmp: Path,
    env: Mapping[str, str] | None = None,
    store: Path | None = None,
    profile: Path | None = None,
) -> WorkerRun:
    """One worker (no records topic) on the filled topic, timed by its commits, then checked."""
    topics = dataclasses.replace(CaseTopics.fresh(stamp, topic.case, name), payloads=topic.name)
    extra = dict(env or {})
    if store is not None:
        extra |= {"INFERSIGHT_STORE__ENABLED": "true", "INFERSIGHT_STORE__URL": f"sqlite:///{store}"}
    log_path = tmp / f"worker-{name}.log"
    state = tmp / f"state-{name}"
    with worker_process(
        bootstrap, topics, port, state, log_path, extra, partitions=TOPIC_PARTITIONS, records_topic=False
    ) as process:
        profiler = Profiler(profile, PROFILE_SECONDS, "the first commit") if profile is not None else None
        timed = time_by_commits(process, bootstrap, topics.worker_group, topic, port, log_path, profiler)
        samples = scrape(port)
        if profiler is not None:
            profiler.finish()
    run = WorkerRun(
        name=name,
        timed=timed,
        modes=summed(samples, "infersight_records_total", "mode"),
        inferences=topic.pairs,
        detections=summed(samples, "infersight_detector_duration_seconds_count", "detector"),
        deadletters=sum(partition_counts(bootstrap, topics.deadletter).values()),
        log_problems=log_problems(log_path),
    )
    if store is not None:
        run.all_rows, run.rows = store_rows(store)
    return run


def check_pass(bootstrap: str, topic: Topic, stamp: str, port: int, tmp: Path) -> WorkerResult:
    """The worker with a records topic: every inference must come out once, ``paired``."""
    topics = dataclasses.replace(CaseTopics.fresh(stamp, topic.case, "check"), payloads=topic.name)
    log_path = tmp / "worker-check.log"
    result = WorkerResult(expected=topic.pairs, startup_s=0.0, first_seen=0, duration_s=0.0, cpu_share=None)
    with worker_process(
        bootstrap, topics, port, tmp / "state-check", log_path, partitions=TOPIC_PARTITIONS
    ) as process:
        timed = time_by_commits(process, bootstrap, topics.worker_group, topic, port, log_path)
    result.startup_s, result.duration_s = timed.startup_s, timed.duration_s
    check_records(read_values(bootstrap, topics.records), topic.case, result)
    result.deadletters = sum(partition_counts(bootstrap, topics.deadletter).values())
    result.log_problems = log_problems(log_path)
    return result


# --- the baselines, each in its own process ----------------------------------------------------------


def baseline_consumer(bootstrap: str, group: str) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "fetch.queue.backoff.ms": 10,  # as the worker's consumer (consumer_extra_config)
        }
    )


class Handler:
    """What a baseline does with each fetch; the bare consumer does nothing."""

    def batch(self, messages: list[Any]) -> None:
        pass

    def extra(self) -> dict[str, Any]:
        return {}


def consume_timed(bootstrap: str, topic: str, group: str, expected: int, handler: Handler) -> Timed:
    """Read ``expected`` events, ``FETCH`` at a time; the clock runs from the first fetch to the last."""
    launched = time.perf_counter()
    consumer = baseline_consumer(bootstrap, group)
    consumer.subscribe([topic])
    try:
        count, last_growth = 0, time.perf_counter()
        first: tuple[float, float, int] | None = None
        while count < expected:
            messages = [m for m in consumer.consume(FETCH, timeout=1.0) if m.error() is None]
            if messages:
                handler.batch(messages)
                count += len(messages)
                last_growth = time.perf_counter()
                if first is None:
                    first = (last_growth, time.process_time(), count)
            elif time.perf_counter() - last_growth > STALL_SECONDS:
                raise RuntimeError(f"the baseline stalled at {count:,} of {expected:,} events")
        finished, cpu = time.perf_counter(), time.process_time()
    finally:
        consumer.close()
    assert first is not None
    start, start_cpu, before = first
    return Timed(
        events=count - before,
        duration_s=finished - start,
        cpu_s=cpu - start_cpu,
        total_events=count,
        startup_s=start - launched,
        extra=handler.extra(),
    )


REQUEST_TYPE = KSERVE_REQUEST.encode()
TYPE_HEADER, ID_HEADER = ATTRIBUTE_PREFIX + "type", ATTRIBUTE_PREFIX + "id"
NAMESPACE_HEADER, MODEL_HEADER = ATTRIBUTE_PREFIX + "namespace", ATTRIBUTE_PREFIX + "inferenceservicename"


class SqlitePairs(Handler):
    """Pair requests with responses in a dict; each fetch's pairs go to SQLite in one ``executemany``."""

    COLUMNS = ("request_id", "namespace", "inferenceservice", "request_body", "response_body")

    def __init__(self, path: Path, extra_columns: tuple[str, ...] = ()) -> None:
        self.columns = (*self.COLUMNS, *extra_columns)
        self.connection = sqlite3.connect(path)
        self.connection.execute("PRAGMA journal_mode=WAL")  # as the store's SQLite
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute(
            f"CREATE TABLE inferences (id INTEGER PRIMARY KEY, {', '.join(self.columns)},"
            " UNIQUE (request_id, namespace, inferenceservice))"
        )
        marks = ", ".join("?" * len(self.columns))
        self.insert = f"INSERT INTO inferences ({', '.join(self.columns)}) VALUES ({marks})"
        self.waiting: dict[tuple[bytes, bytes], tuple[bool, bytes]] = {}
        self.rows = 0

    def pairs(self, messages: list[Any]) -> list[tuple[Any, ...]]:
        """(request id, namespace, inferenceservice, request body, response body) of each pair completed."""
        done: list[tuple[Any, ...]] = []
        waiting = self.waiting
        for message in messages:
            headers = dict(message.headers() or ())
            is_request = headers.get(TYPE_HEADER) == REQUEST_TYPE
            key = (message.key(), headers[ID_HEADER])
            other = waiting.pop(key, None)
            if other is None:
                waiting[key] = (is_request, message.value())
                continue
            request, response = (message.value(), other[1]) if is_request else (other[1], message.value())
            done.append(
                (
                    headers[ID_HEADER].decode(),
                    headers[NAMESPACE_HEADER].decode(),
                    headers[MODEL_HEADER].decode(),
                    request,
                    response,
                )
            )
        return done

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self.connection:
                self.connection.executemany(self.insert, rows)
            self.rows += len(rows)

    def batch(self, messages: list[Any]) -> None:
        self.write(self.pairs(messages))

    def extra(self) -> dict[str, Any]:
        stored = self.connection.execute("SELECT count(*) FROM inferences").fetchone()[0]
        return {"rows": stored, "waiting": len(self.waiting)}


class SqlitePairsScored(SqlitePairs):
    """:class:`SqlitePairs`; each fetch's new requests scored by IForest, windowed for KSDrift, by model."""

    def __init__(self, path: Path, drift: Any, outlier: Any) -> None:
        super().__init__(path, ("outlier_score", "outlier"))
        self.drift, self.outlier = drift, outlier
        self.windows: dict[str, list[Any]] = {}
        self.window_rows: dict[str, int] = {}
        self.drift_tests = self.drift_detected = self.flagged = 0

    def batch(self, messages: list[Any]) -> None:
        import numpy as np

        by_model: dict[str, list[int]] = {}
        rows = self.pairs(messages)
        instances = []
        for index, row in enumerate(rows):
            by_model.setdefault(row[2], []).append(index)
            instances.append(orjson.loads(row[3])["instances"][0])
        scored: list[tuple[Any, ...]] = [()] * len(rows)
        for model, indexes in by_model.items():
            x = np.array([instances[i] for i in indexes], dtype=np.float32)
            data = self.outlier.predict(x, return_instance_score=True)["data"]
            for i, score, flag in zip(indexes, data["instance_score"], data["is_outlier"], strict=True):
                scored[i] = (*rows[i], float(score), bool(flag))
            self.flagged += int(np.sum(data["is_outlier"]))
            self.windows.setdefault(model, []).append(x)
            self.window_rows[model] = self.window_rows.get(model, 0) + len(x)
            if self.window_rows[model] >= WINDOW:
                window = np.concatenate(self.windows[model])
                self.drift_detected += int(self.drift.predict(window[:WINDOW])["data"]["is_drift"])
                self.drift_tests += 1
                self.windows[model] = [window[WINDOW:]]
                self.window_rows[model] = len(window) - WINDOW
        self.write(scored)

    def extra(self) -> dict[str, Any]:
        return {
            **super().extra(),
            "drift_tests": self.drift_tests,
            "drift_detected": self.drift_detected,
            "flagged": self.flagged,
        }


def baseline_process(
    kind: str, bootstrap: str, topic: str, group: str, expected: int, folder: str, results: Queue[Timed]
) -> None:
    """Entry point of a baseline process: ``bare``, ``sqlite`` or ``detectors`` (saved in ``folder``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process
    handler: Handler
    if kind == "bare":
        handler = Handler()
    elif kind == "sqlite":
        handler = SqlitePairs(Path(folder) / f"baseline-{group}.db")
    else:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from alibi_detect.saving import load_detector

        logging.getLogger("alibi_detect").setLevel(logging.ERROR)
        drift = load_detector(str(Path(folder) / DRIFT))
        outlier = load_detector(str(Path(folder) / OUTLIER), enable_unsafe_loading=True)
        handler = SqlitePairsScored(Path(folder) / f"baseline-{group}.db", drift, outlier)
    results.put(consume_timed(bootstrap, topic, group, expected, handler))


def run_baseline(kind: str, bootstrap: str, topic: Topic, group: str, folder: Path) -> Timed:
    result: Timed = run_in_process(
        baseline_process, (kind, bootstrap, topic.name, group, topic.events, str(folder)), f"{kind} baseline"
    )
    return result


# --- the detectors -----------------------------------------------------------------------------------


def fit_detectors(folder: str, features: int, results: Queue[str]) -> None:
    """Fit KSDrift and IForest on U(-10, 10) rows, the requests' distribution, and save them (own process)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before alibi-detect imports TensorFlow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    from alibi_detect.cd import KSDrift
    from alibi_detect.od import IForest
    from alibi_detect.saving import save_detector

    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    reference = np.random.default_rng(0).uniform(-10, 10, (REFERENCE_ROWS, features)).astype(np.float32)
    save_detector(KSDrift(reference, p_val=P_VALUE), str(Path(folder) / DRIFT))
    outlier = IForest()
    outlier.fit(reference)
    outlier.infer_threshold(reference, threshold_perc=THRESHOLD_PERCENTILE)
    save_detector(outlier, str(Path(folder) / OUTLIER))
    results.put(folder)


def write_config(path: Path, folder: Path, models: list[str]) -> Path:
    """The worker's YAML: every model with the same saved KSDrift (windows of WINDOW) and IForest."""
    import yaml

    detectors = [
        {"name": DRIFT, "kind": "drift", "uri": (folder / DRIFT).as_uri(), "window": {"size": WINDOW}},
        # alibi-detect saves outlier detectors with dill: code runs at load, hence the opt-in.
        {
            "name": OUTLIER,
            "kind": "outlier",
            "uri": (folder / OUTLIER).as_uri(),
            "allow_unsafe_loading": True,
        },
    ]
    config = [{"namespace": NAMESPACE, "inferenceservice": model, "detectors": detectors} for model in models]
    path.write_text(yaml.safe_dump({"models": config}), encoding="utf-8")
    return path


# --- the run -----------------------------------------------------------------------------------------


def filled(bootstrap: str, name: str, case: Case, events: int, stamp: str) -> Topic:
    kafka = KafkaConfig.model_validate({"bootstrap_servers": bootstrap, "partitions": TOPIC_PARTITIONS})
    ensure_topics(kafka, [name])
    started = time.perf_counter()
    fill(bootstrap, name, case, events // 2, stamp, TOPIC_PARTITIONS)
    ends = partition_counts(bootstrap, name)
    if sum(ends.values()) != events or len(ends) != TOPIC_PARTITIONS or not all(ends.values()):
        raise SystemExit(f"{name} holds {ends} events per partition, not {events:,} over {TOPIC_PARTITIONS}")
    console.print(
        f"filled {name}: {events:,} events in {time.perf_counter() - started:.1f}s, per partition {ends}"
    )
    return Topic(name=name, case=case, pairs=events // 2, ends=ends)


@dataclass
class Row:
    """One line of the table (and of the JSON)."""

    key: str
    figure: str
    unit: str  # "events/s", "µs/event" or "count"
    infersight: float
    baseline: float | None
    baseline_name: str = ""
    aim: float | None = None
    expected: int | None = None  # for counts
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        return self.infersight / self.baseline if self.baseline else None

    @property
    def met(self) -> bool | None:
        if self.unit == "count":
            return self.infersight == self.expected
        if self.aim is None:
            return None
        return self.infersight >= self.aim if self.higher_is_better else self.infersight <= self.aim

    @property
    def aim_text(self) -> str:
        if self.unit == "count":
            return "all, once"
        return "" if self.aim is None else f"≥ {self.aim:,.0f}/s"

    def figures(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met, "aim_text": self.aim_text}


def rate_rows(
    key: str, what: str, run: WorkerRun, base: Timed, base_name: str, aim: float | None
) -> list[Row]:
    timed = run.timed
    rows = [
        Row(
            f"{key}_events_per_s",
            f"{what}: events/s",
            "events/s",
            timed.events_per_s,
            base.events_per_s,
            base_name,
            aim,
        )
    ]
    if timed.cpu_us_per_event is not None and base.cpu_us_per_event is not None:
        rows.append(
            Row(
                f"{key}_cpu_us_per_event",
                f"{what}: CPU µs/event",
                "µs/event",
                timed.cpu_us_per_event,
                base.cpu_us_per_event,
                base_name,
                higher_is_better=False,
            )
        )
    return rows


def text(value: float | None, unit: str, expected: int | None = None) -> str:
    if value is None:
        return ""
    if unit == "count":
        return f"{value:,.0f}/{expected:,}"
    if unit == "µs/event":
        return f"{value:,.1f} µs"
    return f"{value:,.0f}/s"


def report(rows: list[Row], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("figure", "infersight", "baseline", "ratio", "aim", "met"):
        table.add_column(column, justify="left" if column in ("figure", "aim") else "right")
    for row in rows:
        ratio = row.ratio
        baseline = text(row.baseline, row.unit) + (f" {row.baseline_name}" if row.baseline_name else "")
        met = "" if row.met is None else ("[green]met[/]" if row.met else "[red]not met[/]")
        table.add_row(
            row.figure,
            text(row.infersight, row.unit, row.expected),
            baseline,
            "" if ratio is None else f"{ratio:.2f}x",
            row.aim_text,
            met,
        )
    Console(width=max(console.width, 140)).print(table)  # a pipe gets 80 columns: too few


def check_rows(runs: dict[str, WorkerRun], checked: WorkerResult, pairs: int) -> list[Row]:
    """The correctness checks as rows: the records topic, then each timed run's metrics and store."""
    once = (
        checked.paired
        if checked.all_paired
        else min(checked.paired, checked.distinct_ids) - abs(checked.records - pairs)
    )
    rows = [
        Row("check_paired", "records topic: each inference once, paired", "count", once, None, expected=pairs)
    ]
    for key, run in runs.items():
        what = key.replace("_", " ")
        paired = run.modes.get("paired", 0) if sum(run.modes.values()) == run.inferences else -1
        rows.append(
            Row(
                f"{key}_paired",
                f"{what}: paired (worker metrics)",
                "count",
                paired,
                None,
                expected=run.inferences,
            )
        )
        if run.rows is not None:
            stored = run.rows if run.all_rows == run.rows else -1
            rows.append(
                Row(
                    f"{key}_rows",
                    f"{what}: store rows, both halves",
                    "count",
                    stored,
                    None,
                    expected=run.inferences,
                )
            )
    return rows


def explain(runs: dict[str, WorkerRun], checked: WorkerResult, baselines: dict[str, Timed]) -> bool:
    """Print what went wrong and what the logs said; whether anything failed."""
    problems = False
    for key, run in runs.items():
        if not run.ok:
            problems = True
            console.print(
                f"[red]{key}[/]: modes {run.modes}, {run.inferences:,} inferences, "
                f"rows {run.rows}/{run.all_rows}, {run.deadletters} dead letters"
            )
        for line in run.log_problems:
            console.print(f"[yellow]{key} worker log:[/] {line}", highlight=False)
    if not checked.all_paired:
        problems = True
        console.print(
            f"[red]records check[/]: {checked.records:,} records, modes {checked.modes}, "
            f"{checked.distinct_ids:,} distinct ids, {checked.wrong_shape:,} with the wrong shape, "
            f"{checked.deadletters} dead letters"
        )
    for line in checked.log_problems:
        console.print(f"[yellow]check worker log:[/] {line}", highlight=False)
    for key, base in baselines.items():
        console.print(f"baseline {key}: {base.total_events:,} events, {base.extra}", highlight=False)
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EVENTS:,} events a case, to check it works"
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"events (2 per inference) for cases 1-3 (default {DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--detector-events",
        type=int,
        default=None,
        help=f"events for the case with detectors (default {DEFAULT_DETECTOR_EVENTS:,})",
    )
    parser.add_argument(
        "--check-pairs",
        type=int,
        default=None,
        help=f"inferences of the records-topic check (default {DEFAULT_CHECK_PAIRS:,})",
    )
    parser.add_argument(
        "--cases",
        default=",".join(CHOICES),
        help=f"comma-separated, of {', '.join(CHOICES)} (default all; the records-topic check always runs)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"py-spy record a worker for {PROFILE_SECONDS}s from its first commit: "
        "a flame graph, or raw stacks and a list of own times where PATH ends in .txt",
    )
    parser.add_argument(
        "--profile-case",
        choices=("no-store", "store"),
        default="no-store",
        help="the worker --profile records (default no-store)",
    )
    add_common_arguments(parser, DEFAULT_JSON, "workers' metrics")
    args = parser.parse_args(argv)
    args.events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    args.detector_events = args.detector_events or (QUICK_EVENTS if args.quick else DEFAULT_DETECTOR_EVENTS)
    args.check_pairs = args.check_pairs or (QUICK_CHECK_PAIRS if args.quick else DEFAULT_CHECK_PAIRS)
    args.cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    if unknown := sorted(set(args.cases) - set(CHOICES)):
        parser.error(f"unknown cases: {', '.join(unknown)}")
    for name in ("events", "detector_events"):
        if getattr(args, name) < 2 * BATCH_SIZE or getattr(args, name) % BATCH_SIZE:
            parser.error(
                f"--{name.replace('_', '-')} must be a multiple of {BATCH_SIZE} and at least {2 * BATCH_SIZE}"
            )
    return args


@dataclass
class Bench:
    """What one run shares: the broker, names, ports and what was measured so far."""

    bootstrap: str
    stamp: str
    tmp: Path
    ports: list[int]
    rows: list[Row] = field(default_factory=list)
    runs: dict[str, WorkerRun] = field(default_factory=dict)
    baselines: dict[str, Timed] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"bench-worker-{self.stamp}"

    def topic(self, what: str, case: Case, events: int) -> Topic:
        return filled(self.bootstrap, f"{self.prefix}-{what}", case, events, self.stamp)

    def baseline(self, key: str, kind: str, topic: Topic, folder: Path | None = None) -> Timed:
        base = run_baseline(kind, self.bootstrap, topic, f"{self.prefix}-{key}", folder or self.tmp)
        self.baselines[key] = base
        console.print(
            f"baseline {key}: {base.events_per_s:,.0f} events/s, {base.cpu_us_per_event or 0:,.1f} µs/event"
        )
        return base

    def worker(self, key: str, topic: Topic, **options: Any) -> WorkerRun:
        port = self.ports[len(self.runs)]
        run = measure_worker(key, self.bootstrap, topic, self.stamp, port, self.tmp, **options)
        self.runs[key] = run
        timed = run.timed
        console.print(
            f"worker {key}: {timed.events_per_s:,.0f} events/s, {timed.cpu_us_per_event or 0:,.1f} µs/event "
            f"({timed.events:,} events in {timed.duration_s:.2f}s from its {timed.started_by}, "
            f"{timed.startup_s:.1f}s after launch)"
        )
        return run


def no_store(bench: Bench, case: Case, key: str, events: int, profile: Path | None) -> None:
    console.rule(f"no store, no detectors, {case.name}")
    topic = bench.topic(key, case, events)
    base = bench.baseline(f"bare_{key}", "bare", topic)
    run = bench.worker(key, topic, profile=profile)
    bench.rows += rate_rows(key, f"no store, {case.name}", run, base, "bare consumer", AIM_NO_STORE)


def with_store(bench: Bench, events: int, profile: Path | None) -> None:
    console.rule(f"SQLite store, {V1.name}")
    topic = bench.topic("store", V1, events)
    base = bench.baseline("sqlite", "sqlite", topic)
    run = bench.worker("store", topic, store=bench.tmp / "store.db", profile=profile)
    bench.rows += rate_rows("store", f"SQLite store, {V1.name}", run, base, "dict + executemany", AIM_STORE)


def with_detectors(bench: Bench, events: int) -> None:
    console.rule(f"KSDrift + IForest on {MODELS} models, SQLite store, {V1.name}")
    tmp = bench.tmp
    folder = tmp / "detectors"
    run_in_process(fit_detectors, (str(folder), V1.features), "fitting")
    config = write_config(tmp / "infersight.yaml", folder, model_names(MODELS, TOPIC_PARTITIONS))
    topic = bench.topic("detectors", V1, events)
    base = bench.baseline("detectors", "detectors", topic, folder)
    env = {
        "INFERSIGHT_CONFIG": str(config),
        "INFERSIGHT_DETECTIONS__STATE_URI": str(tmp / "detector-state"),
        "INFERSIGHT_DETECTIONS__CACHE_DIR": str(tmp / "detector-cache"),
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    run = bench.worker("detectors", topic, env=env, store=tmp / "store-detectors.db")
    what = f"KSDrift + IForest x {MODELS} models, SQLite, {V1.name}"
    bench.rows += rate_rows("detectors", what, run, base, "dict + detectors + executemany", AIM_DETECTORS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    broker_port, controller_port, *ports = free_ports(2 + len(CHOICES) + 1, *port_range(args.ports))
    with (
        tempfile.TemporaryDirectory(prefix="infersight-bench-worker-") as tmp_name,
        kafka_broker(args.bootstrap, Path(tmp_name) / "kafka", [broker_port, controller_port]) as bootstrap,
    ):
        bench = Bench(bootstrap, stamp, Path(tmp_name), ports)
        if "no-store" in args.cases:
            profile = args.profile if args.profile_case == "no-store" else None
            no_store(bench, V1, "no_store", args.events, profile)
        if "v2" in args.cases:
            no_store(bench, V2, "no_store_v2", args.events, None)
        if "store" in args.cases:
            with_store(bench, args.events, args.profile if args.profile_case == "store" else None)
        if "detectors" in args.cases:
            with_detectors(bench, args.detector_events)
        console.rule("records topic check")
        check = bench.topic("check", V1, 2 * args.check_pairs)
        checked = check_pass(bootstrap, check, stamp, ports[-1], bench.tmp)
    rows, runs, baselines = bench.rows, bench.runs, bench.baselines
    rows += check_rows(runs, checked, check.pairs)
    profiled = (
        f" ({args.profile_case} worker profiled by py-spy: its figures are disturbed)" if args.profile else ""
    )
    quick = " (quick)" if args.quick else ""
    report(rows, f"One infersight worker process against same-run baselines{quick}{profiled}")
    problems = explain(runs, checked, baselines)
    write_json(
        args.json,
        {
            "rows": [row.figures() for row in rows],
            "runs": {key: run.figures() for key, run in runs.items()},
            "baselines": {key: base.figures() for key, base in baselines.items()},
            "check": {**asdict(checked), "all_paired": checked.all_paired},
            "config": {
                "quick": args.quick,
                "cases": args.cases,
                "events": args.events,
                "detector_events": args.detector_events,
                "check_pairs": args.check_pairs,
                "partitions": TOPIC_PARTITIONS,
                "models": MODELS,
                "batch_size": BATCH_SIZE,
                "fetch": FETCH,
                "commit_poll_seconds": COMMIT_POLL_SECONDS,
                "window": WINDOW,
                "profiled": bool(args.profile),
                "local_broker": not args.bootstrap,
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "started": stamp,
            },
        },
    )
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
