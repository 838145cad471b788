"""Real processes for the tests: the ingest as users run it, and reading topics back."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_environment(bootstrap: str, topic: str, **env: str) -> dict[str, str]:
    """The environment of an infersight process on ``bootstrap`` whose topics are named after ``topic``."""
    return {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topic,
        "INFERSIGHT_KAFKA__TOPICS__DETECTIONS": f"{topic}.detections",
        "INFERSIGHT_KAFKA__TOPICS__DEADLETTER": f"{topic}.deadletter",
        "INFERSIGHT_KAFKA__PARTITIONS": "3",
        **env,
    }


def wait_ready(
    process: subprocess.Popen[bytes],
    url: str,
    name: str,
    log: Path,
    timeout: float = 60,
    verify: str | bool = True,
    status: str | None = None,
) -> None:
    """Until ``url`` answers 200 (with ``"status": status`` in its JSON, if given); a process that
    exits or stays unready fails with its log."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = httpx.get(url, timeout=2, verify=verify)
            if answer.status_code == 200 and (status is None or answer.json().get("status") == status):
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become ready: {log.read_text()}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, and SIGKILL when the process has not ended ``timeout`` seconds later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Ingest:
    url: str
    topic: str
    log: Path
    pid: int
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def serve(
    command: str,
    log_dir: Path,
    environment: dict[str, str],
    ready_path: str,
    *,
    tls: bool = False,
    port: int | None = None,
    status: str | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``infersight <command>`` on ``port`` (a free one by default) in its own process, ready when
    ``ready_path`` answers 200.

    Yields the process, its base URL and its log. With ``tls`` it speaks HTTPS, its issuer named by
    ``INFERSIGHT_TEST_CA`` in ``environment``.
    """
    port = port or free_port()
    log = log_dir / f"{command}-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "infersight", command, "--host", "127.0.0.1", "--port", str(port)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        wait_ready(
            process,
            f"{url}{ready_path}",
            command,
            log,
            verify=environment.get("INFERSIGHT_TEST_CA", True),
            status=status,
        )
        yield process, url, log
    finally:
        stop(process)


@contextlib.contextmanager
def run_ingest(
    bootstrap: str,
    topic: str,
    log_dir: Path,
    *,
    port: int | None = None,
    kafka_ready: bool = True,
    **env: str,
) -> Iterator[Ingest]:
    """``infersight ingest`` in its own process, ready when ``/readyz`` says so: once Kafka answers,
    or (``kafka_ready=False``) once it takes events at all, into its spool while Kafka is away.

    Its spool is a folder of its own unless ``INFERSIGHT_INGEST__SPOOL__PATH`` names one (an
    ingest drains the spool files it finds in its folder).
    """
    spool = tempfile.mkdtemp(prefix="spool-", dir=log_dir)
    environment = kafka_environment(bootstrap, topic, **{"INFERSIGHT_INGEST__SPOOL__PATH": spool, **env})
    # With a certificate configured the ingest speaks HTTPS only.
    tls = "INFERSIGHT_INGEST__TLS__CERTFILE" in environment
    status = "ready" if kafka_ready else None
    with serve("ingest", log_dir, environment, "/readyz", tls=tls, port=port, status=status) as (
        process,
        url,
        log,
    ):
        yield Ingest(url=url, topic=topic, log=log, pid=process.pid, process=process)


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in the topic now: end offsets minus beginning offsets over all partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        starts = consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[object]:
    """Every record in the topic, read by a plain kafka-python consumer (any Kafka client would do)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[object] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        self.process.kill()
        self.process.wait()


def start_worker(bootstrap: str, topic: str, log_dir: Path, **env: str) -> Worker:
    """``infersight worker`` in its own process, reading ``topic`` (plus what ``env`` configures)."""
    port = free_port()
    log = log_dir / f"worker-{port}.log"
    defaults = {
        "INFERSIGHT_WORKER__STATE_DIR": str(log_dir / f"worker-state-{port}"),
        "INFERSIGHT_DETECTIONS__STATE_URI": str(log_dir / "detector-state"),
        "INFERSIGHT_DETECTIONS__CACHE_DIR": str(log_dir / "detector-cache"),
        "INFERSIGHT_STORE__URL": f"sqlite:///{log_dir / 'store.db'}",
        "INFERSIGHT_WORKER__METRICS_HOST": "127.0.0.1",
        "INFERSIGHT_WORKER__METRICS_PORT": str(port),
    }
    environment = kafka_environment(bootstrap, topic, **{**defaults, **env})
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "infersight", "worker"],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Worker(process=process, log=log, metrics_url=f"http://127.0.0.1:{port}/metrics")


@contextlib.contextmanager
def run_worker(bootstrap: str, topic: str, log_dir: Path, **env: str) -> Iterator[Worker]:
    worker = start_worker(bootstrap, topic, log_dir, **env)
    try:
        yield worker
    finally:
        if worker.process.poll() is None:
            stop(worker.process, timeout=30)


def wait_for_records(bootstrap: str, topic: str, count: int, timeout: float = 90.0) -> list[object]:
    """Read ``topic`` until it holds at least ``count`` records."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if topic_size(bootstrap, topic) >= count:
                return read_topic(bootstrap, topic)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} did not reach {count} records")
        time.sleep(0.5)


def stored_inferences(store_url: str) -> dict[str, tuple[int, bool, bool]]:
    """Per request id in the store: its number of rows, and whether the request and response are in."""
    from sqlalchemy import create_engine, text

    from infersight.sinks.store.engine import driver_url

    engine = create_engine(driver_url(store_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT request_id, count(*), max(CASE WHEN request_event_id IS NULL THEN 0 ELSE 1 END),"
                    " max(CASE WHEN response_event_id IS NULL THEN 0 ELSE 1 END) FROM inferences"
                    " GROUP BY request_id"
                )
            ).all()
    except Exception:  # the worker has not created the tables yet
        return {}
    finally:
        engine.dispose()
    return {row[0]: (int(row[1]), bool(row[2]), bool(row[3])) for row in rows}


def wait_stored(
    store_url: str, ids: set[str], timeout: float = 120, *, halves: int = 1
) -> dict[str, tuple[int, bool, bool]]:
    """Until every id in ``ids`` is stored with ``halves`` halves (1: request, 2: both); all stored rows."""
    deadline = time.monotonic() + timeout
    while True:
        stored = stored_inferences(store_url)
        missing = {i for i in ids if i not in stored or sum(stored[i][1:]) < halves}
        if not missing:
            return stored
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} of {len(ids)} acknowledged inferences never stored whole")
        time.sleep(1)


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[TopicPartition, int]:
    """The offsets ``group`` has committed on ``topic``'s partitions (kafka-python 2 or 3)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        else:  # kafka-python 2
            offsets = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


#: Where fault tests append their counts, one JSON line each (set by bench/faults.py).
FAULTS_REPORT = "INFERSIGHT_FAULTS_REPORT"


def report_fault(
    scenario: str, sent: int, acknowledged: int, stored: int, lost: int, duplicated: int, **extra: object
) -> None:
    """Print a fault test's end-to-end counts, and append them to ``$INFERSIGHT_FAULTS_REPORT`` if set."""
    counts = {
        "scenario": scenario,
        "sent": sent,
        "acknowledged": acknowledged,
        "stored": stored,
        "lost": lost,
        "duplicated": duplicated,
        **extra,
    }
    print("\n" + ", ".join(f"{name} {value}" for name, value in counts.items()))
    if path := os.environ.get(FAULTS_REPORT):
        import json

        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(counts) + "\n")


def count_stored(
    acknowledged: set[str], stored: dict[str, tuple[int, bool, bool]], halves: int = 2
) -> tuple[int, int, int]:
    """Of the acknowledged inferences: how many are stored whole, lost, and stored more than once."""
    whole = {i for i in acknowledged if i in stored and sum(stored[i][1:]) >= halves}
    duplicated = sum(1 for i in acknowledged if i in stored and stored[i][0] > 1)
    return len(whole), len(acknowledged - whole), duplicated


#: Worker settings of the fault tests: checkpoints every 0.2 s, halves waiting long, quick rebalances.
FAST_WORKER = {
    "INFERSIGHT_WORKER__BATCH_SECONDS": "0.2",
    "INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS": "600",
    "INFERSIGHT_WORKER__REBALANCE_TIMEOUT_SECONDS": "10",
}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Until ``condition()`` holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
