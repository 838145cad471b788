"""Records per second through decode and pairing for one worker process, against a bare consumer.

For each case (KServe v1 and Open Inference Protocol v2 bodies, 4 and 100 features) a fresh
payloads topic is filled first with ``--pairs`` request/response pairs, written the way the ingest
writes them (``ce_*`` headers from ``infersight.binding.to_kafka_headers``, key
``namespace/inferenceservice``, the response right after its request). Filling first means that
the worker is measured, not the producer. Then one ``infersight worker`` process (fresh consumer
group, records published as JSON on a records topic) reads the topic; the clock runs from its
first record on the records topic until all of them are there, and every record is read back to
check that it is ``paired``. A bare aiokafka consumer in its own process then reads the same
events without decoding anything: the ceiling that Kafka and the client set on one process.

    python bench/worker.py [--pairs 20000] [--bootstrap HOST:PORT] [--json PATH] [--ports LOW-HIGH]

Without ``--bootstrap`` or ``$KAFKA_BOOTSTRAP_SERVERS`` it starts the project's local broker in a
temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import orjson
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

from infersight.binding import to_kafka_headers
from infersight.config import KafkaConfig
from infersight.kafkaclient import ensure_topics
from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE
from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "worker.json"
DEFAULT_PAIRS = 20_000
PARTITIONS = 6
MODELS = 8
NAMESPACE = "bench"
BATCH_SIZE = 2000
PAIRING_TIMEOUT_SECONDS = 600
POLL_SECONDS = 0.2
#: Give up when the records topic (or the baseline's count) has not grown for this long.
STALL_SECONDS = 120
TABLE_WIDTH = 100
#: Log lines worth reporting: anything above info, and tracebacks.
LOG_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")

console = Console(soft_wrap=True)


@dataclass(frozen=True)
class Case:
    """One body shape: a protocol and a number of features per instance."""

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


CASES = (
    Case("kserve-v1", 4),
    Case("kserve-v1", 100),
    Case("oip-v2", 4),
    Case("oip-v2", 100),
)


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
    def fresh(cls, stamp: str, case: Case) -> CaseTopics:
        prefix = f"bench-worker-{stamp}-{case.slug}"
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
    """One worker run: the timed phase and what the records topic held afterwards."""

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
        return (self.expected - self.first_seen) / self.duration_s

    @property
    def all_paired(self) -> bool:
        return (
            self.records == self.expected
            and self.paired == self.expected
            and self.distinct_ids == self.expected
            and self.wrong_shape == 0
            and self.deadletters == 0
        )


@dataclass(frozen=True)
class BaselineResult:
    """The bare consumer: every event read, from partition assignment to the last one."""

    events: int
    duration_s: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s

    @property
    def pairs_per_s(self) -> float:
        return self.events_per_s / 2


# --- ports and processes -------------------------------------------------------------------------


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
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``infersight worker`` on the case's topics; stop it (SIGTERM, wait) on the way out.

    The SQL store is off (it has its own benchmark); ``extra_env`` adds or overrides settings.
    """
    env = {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topics.payloads,
        "INFERSIGHT_KAFKA__TOPICS__DETECTIONS": topics.detections,
        "INFERSIGHT_KAFKA__TOPICS__DEADLETTER": topics.deadletter,
        "INFERSIGHT_KAFKA__PARTITIONS": str(PARTITIONS),
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


# --- Kafka ----------------------------------------------------------------------------------------


def partition_of_key(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner (Java's murmur2) gives ``key``."""
    from aiokafka.partitioner import murmur2

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


async def prefill(bootstrap: str, topic: str, case: Case, pairs: int, stamp: str) -> None:
    """``pairs`` requests, each followed by its response, in the ingest's record format."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(f"{case.slug}-{pairs}")
    models = model_names(MODELS, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        deliveries: list[asyncio.Future[Any]] = []
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
                headers = to_kafka_headers(kserve_attributes(event_type, event_id, model, sent))
                deliveries.append(await producer.send(topic, value=body, key=key, headers=headers))
            if len(deliveries) >= 10_000:
                await asyncio.gather(*deliveries)
                deliveries.clear()
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


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
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

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


# --- the worker -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def log_problems(path: Path, keep: int = 8) -> list[str]:
    """Warning, error and traceback lines of the worker's log, alike ones (numbers aside) counted once."""
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        if LOG_PROBLEM.search(line):
            text = re.sub(r"^(?:\[[\d\- :,.]+\]\s*)+", "", line).strip()[:200]  # time and pid
            shape = re.sub(r"\d+", "N", text)
            counts[shape] += 1
            examples.setdefault(shape, text)
    return [f"{count} x {examples[shape]}" for shape, count in counts.most_common(keep)]


def measure_worker(
    bootstrap: str, topics: CaseTopics, case: Case, pairs: int, metrics_port: int, tmp: Path
) -> WorkerResult:
    """One worker on the pre-filled topic, timed; then its records read back and checked."""
    log_path = tmp / f"worker-{case.slug}.log"
    with worker_process(bootstrap, topics, metrics_port, tmp / f"state-{case.slug}", log_path) as process:
        startup, first_seen, duration, cpu = time_worker(process, bootstrap, topics.records, pairs, log_path)
    result = WorkerResult(
        expected=pairs, startup_s=startup, first_seen=first_seen, duration_s=duration, cpu_share=cpu
    )
    check_records(read_values(bootstrap, topics.records), case, result)
    result.deadletters = sum(partition_counts(bootstrap, topics.deadletter).values())
    result.log_problems = log_problems(log_path)
    return result


# --- the baseline, in its own process -------------------------------------------------------------


async def consume_all(
    bootstrap: str,
    topic: str,
    group: str,
    expected: int,
    handle: Callable[[Any], None] | None = None,
    max_records: int | None = None,
) -> BaselineResult:
    """Read ``expected`` events with one consumer; time from partition assignment to the last.

    ``handle`` is called on each message as it comes (by baselines that do work per event); it
    blocks the loop, so ``max_records`` keeps each fetch short enough for the heartbeats.
    """
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

    assigned_at: list[float] = []

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: object) -> None:
            pass

        async def on_partitions_assigned(self, assigned: object) -> None:
            if not assigned_at:
                assigned_at.append(time.perf_counter())

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    consumer.subscribe([topic], listener=Listener())
    await consumer.start()
    try:
        count, last_growth = 0, time.perf_counter()
        while count < expected:
            batches = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            got = 0
            for messages in batches.values():
                got += len(messages)
                if handle is not None:
                    for message in messages:
                        handle(message)
            if handle is not None:
                # getmany returns prefetched records without yielding: let the heartbeats run.
                await asyncio.sleep(0)
            count += got
            if got:
                last_growth = time.perf_counter()
            elif time.perf_counter() - last_growth > STALL_SECONDS:
                raise RuntimeError(f"the baseline stalled at {count:,} of {expected:,} events")
        finished = time.perf_counter()
    finally:
        await consumer.stop()
    return BaselineResult(events=count, duration_s=finished - assigned_at[0])


def baseline_process(
    bootstrap: str, topic: str, group: str, expected: int, results: Queue[BaselineResult]
) -> None:
    """Entry point of the baseline process; the default asyncio loop, as the Faust worker runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process
    results.put(asyncio.run(consume_all(bootstrap, topic, group, expected)))


def run_baseline(bootstrap: str, topic: str, group: str, expected: int) -> BaselineResult:
    """Run the baseline in a fresh process and return its figures."""
    result: BaselineResult = run_in_process(baseline_process, (bootstrap, topic, group, expected), "baseline")
    return result


# --- report ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    case: Case
    prefill_s: float
    partitions: dict[int, int]
    worker: WorkerResult
    baseline: BaselineResult

    @property
    def ratio(self) -> float:
        return self.worker.records_per_s / self.baseline.pairs_per_s

    def figures(self) -> dict[str, Any]:
        return {
            "case": self.case.name,
            "protocol": self.case.protocol,
            "features": self.case.features,
            "prefill_s": self.prefill_s,
            "events_per_partition": self.partitions,
            "worker": {
                **asdict(self.worker),
                "records_per_s": self.worker.records_per_s,
                "all_paired": self.worker.all_paired,
            },
            "baseline": {
                **asdict(self.baseline),
                "events_per_s": self.baseline.events_per_s,
                "pairs_per_s": self.baseline.pairs_per_s,
            },
            "ratio_worker_records_to_baseline_pairs": self.ratio,
        }


def report(results: list[CaseResult]) -> None:
    table = Table(title="One worker: decode + pairing (a record is a request and its response)")
    table.add_column("case", no_wrap=True)
    table.add_column("worker\nrecords/s", justify="right")
    table.add_column("worker\nCPU", justify="right")
    table.add_column("baseline\nevents/s (pairs/s)", justify="right", no_wrap=True)
    table.add_column("worker ÷\nbase pairs", justify="right")
    table.add_column("all\npaired", justify="right", no_wrap=True)
    for result in results:
        worker, base = result.worker, result.baseline
        table.add_row(
            result.case.name,
            f"{worker.records_per_s:,.0f}",
            "?" if worker.cpu_share is None else f"{worker.cpu_share:.0%}",
            f"{base.events_per_s:,.0f} ({base.pairs_per_s:,.0f})",
            f"{result.ratio:.1%}",
            "[green]yes[/]" if worker.all_paired else f"[red]{worker.paired:,}/{worker.expected:,}[/]",
        )
    Console(width=max(console.width, TABLE_WIDTH)).print(table)  # a pipe gets 80 columns: too few
    for result in results:
        worker = result.worker
        if not worker.all_paired:
            console.print(
                f"[red]{result.case.name}[/]: {worker.records:,} records, modes {worker.modes}, "
                f"{worker.distinct_ids:,} distinct ids, {worker.wrong_shape:,} with the wrong shape, "
                f"{worker.deadletters:,} dead letters"
            )
        for line in worker.log_problems:
            console.print(f"[yellow]{result.case.name} worker log:[/] {line}", highlight=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--pairs",
        type=int,
        default=DEFAULT_PAIRS,
        help=f"request/response pairs per case (default {DEFAULT_PAIRS:,})",
    )
    add_common_arguments(parser, DEFAULT_JSON, "workers' metrics")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    return args


def run_case(bootstrap: str, case: Case, pairs: int, stamp: str, metrics_port: int, tmp: Path) -> CaseResult:
    topics = CaseTopics.fresh(stamp, case)
    config = KafkaConfig.model_validate({"bootstrap_servers": bootstrap, "partitions": PARTITIONS})
    ensure_topics(config, [topics.payloads, topics.records, topics.detections, topics.deadletter])
    console.rule(case.name)
    console.print(f"pre-filling {topics.payloads} with {pairs:,} pairs …")
    started = time.perf_counter()
    asyncio.run(prefill(bootstrap, topics.payloads, case, pairs, stamp))
    prefill_s = time.perf_counter() - started
    partitions = partition_counts(bootstrap, topics.payloads)
    if sum(partitions.values()) != 2 * pairs or not all(partitions.values()):
        raise SystemExit(f"the payloads topic holds {partitions} events per partition, not {2 * pairs:,}")
    console.print(f"worker, batches of {BATCH_SIZE} → {topics.records} …")
    worker = measure_worker(bootstrap, topics, case, pairs, metrics_port, tmp)
    console.print(
        f"worker: {worker.records_per_s:,.0f} records/s (started in {worker.startup_s:.1f}s); bare consumer …"
    )
    base = run_baseline(bootstrap, topics.payloads, topics.baseline_group, 2 * pairs)
    return CaseResult(case=case, prefill_s=prefill_s, partitions=partitions, worker=worker, baseline=base)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    broker_port, controller_port, *metrics_ports = free_ports(2 + len(CASES), *port_range(args.ports))
    results: list[CaseResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="infersight-bench-worker-") as tmp,
        kafka_broker(args.bootstrap, Path(tmp) / "kafka", [broker_port, controller_port]) as bootstrap,
    ):
        for case, metrics_port in zip(CASES, metrics_ports, strict=True):
            results.append(run_case(bootstrap, case, args.pairs, stamp, metrics_port, Path(tmp)))
    report(results)
    write_json(
        args.json,
        {
            "cases": [result.figures() for result in results],
            "config": {
                "pairs": args.pairs,
                "partitions": PARTITIONS,
                "models": MODELS,
                "batch_size": BATCH_SIZE,
                "pairing_timeout_seconds": PAIRING_TIMEOUT_SECONDS,
                "poll_seconds": POLL_SECONDS,
                "local_broker": not args.bootstrap,
                "cpus": os.cpu_count(),
                "started": stamp,
            },
        },
    )
    return 0 if all(result.worker.all_paired for result in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
