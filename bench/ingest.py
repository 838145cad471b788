"""Throughput and latency of the ingest (HTTP CloudEvents → Kafka, acks=all) against a bare producer.

The ingest answers 202 only once Kafka has acknowledged the event, so its cost over a plain
producer is the HTTP server, the CloudEvents parsing and the per-request bookkeeping. This
benchmark measures that cost: wrk posts KServe logger events (binary mode, one unique ce-id per
request) to a real ``infersight ingest`` process, then a bare confluent-kafka (librdkafka) producer
in its own process sends the same records (same body, key and headers) with the same concurrency,
each sender awaiting its delivery report as the ingest does. It also checks that every
acknowledged event is in the topic.

    python bench/ingest.py [--seconds 15] [--connections 64] [--bootstrap HOST:PORT] [--json PATH]

Without ``--bootstrap`` or ``$KAFKA_BOOTSTRAP_SERVERS`` it starts the project's local broker in a
temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from common import (
    add_common_arguments,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    write_json,
)
from rich.console import Console
from rich.table import Table

from infersight.config import KafkaConfig
from infersight.kafkaclient import ensure_topics
from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "kserve_event.lua"
DEFAULT_JSON = BENCH_DIR / "results" / "ingest.json"
WARMUP_SECONDS = 3
PARTITIONS = 6
AIM_EVENTS_PER_SECOND = 5_000
AIM_SHARE_OF_BASELINE = 0.40
INGEST_ROW = "ingest (HTTP → Kafka, acks=all)"
BASELINE_ROW = "bare confluent-kafka producer (baseline)"

console = Console(soft_wrap=True)


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports."""

    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def acknowledged(self) -> int:
        """Requests answered 2xx; the ingest answers 202 or an error, never 3xx."""
        return self.requests - self.non_2xx

    @property
    def events_per_s(self) -> float:
        return self.acknowledged / self.duration_s


@dataclass(frozen=True)
class BaselineResult:
    """The bare producer's measured phase."""

    events: int
    duration_s: float
    p50_ms: float
    p99_ms: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s


@dataclass(frozen=True)
class Template:
    """One record as the ingest wrote it; the baseline resends it with a fresh ce_id."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


# --- ports and processes -------------------------------------------------------------------------


@contextlib.contextmanager
def ingest_process(bootstrap: str, topic: str, port: int, log_path: Path) -> Iterator[str]:
    """Run ``infersight ingest`` producing to ``topic``; yield its URL once /readyz answers 200."""
    env = {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topic,
        # The topic exists already; do not create the detection and dead-letter topics.
        "INFERSIGHT_KAFKA__CREATE_TOPICS": "false",
        "INFERSIGHT_INGEST__LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "infersight", "ingest", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until_ready(process, url + "readyz", log_path)
        yield url
    finally:
        stop(process, timeout=30)


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float = 60
) -> None:
    """Poll ``url`` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the ingest exited with {process.returncode}:\n{log_path.read_text()}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the ingest did not get ready within {timeout_s:.0f}s:\n{log_path.read_text()}")


# --- Kafka ----------------------------------------------------------------------------------------


def records_in(bootstrap: str, topic: str) -> int:
    """Records in ``topic``: end offsets minus beginning offsets, summed over partitions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(partitions)
        beginnings = consumer.beginning_offsets(partitions)
        return sum(ends[tp] - beginnings[tp] for tp in partitions)
    finally:
        consumer.close()


def first_record(bootstrap: str, topic: str) -> Template:
    """The first record the ingest wrote, as the template for the baseline's records."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    try:
        for record in consumer:
            return Template(key=record.key, value=record.value, headers=list(record.headers))
    finally:
        consumer.close()
    raise SystemExit(f"topic {topic} is empty: the ingest wrote nothing")


# --- wrk ------------------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNIT_MS[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"unexpected wrk output (no match for {pattern!r}):\n{text}")
    return match


def parse_wrk(output: str) -> WrkResult:
    """Figures from wrk's text report (run with --latency)."""
    total = _search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    p50 = _search(r"^\s*50%\s+([\d.]+)(us|ms|s|m|h)", output)
    p99 = _search(r"^\s*99%\s+([\d.]+)(us|ms|s|m|h)", output)
    rate = _search(r"^Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests=int(total[1]),
        duration_s=_ms(total[2], total[3]) / 1000,
        requests_per_s=float(rate[1]),
        p50_ms=_ms(p50[1], p50[2]),
        p99_ms=_ms(p99[1], p99[2]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def run_wrk(url: str, seconds: int, connections: int, id_prefix: str) -> WrkResult:
    """One wrk run: one thread, ``connections`` connections, ids prefixed with ``id_prefix``."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(LUA_SCRIPT), url, "--", id_prefix,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# --- the baseline, in its own process -------------------------------------------------------------


def percentile_ms(sorted_seconds: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted latencies in seconds, in milliseconds."""
    index = min(len(sorted_seconds) - 1, max(0, round(share * len(sorted_seconds)) - 1))
    return sorted_seconds[index] * 1000


class BaselineProducer:
    """A confluent-kafka producer whose sends are awaited: delivery reports settle futures on the loop.

    A thread serves the reports (``poll``), as the ingest's publisher does.
    """

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        self.loop = asyncio.get_running_loop()
        self.polling = True
        self.poller = threading.Thread(target=self._poll, name="baseline-delivery-reports", daemon=True)
        self.poller.start()

    def _poll(self) -> None:
        while self.polling:
            self.producer.poll(0.05)

    def _delivered(self, future: asyncio.Future[None], error: Any, _message: Any) -> None:
        def settle() -> None:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(RuntimeError(str(error)))

        self.loop.call_soon_threadsafe(settle)

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Produce one record and wait for Kafka's acknowledgement."""
        future: asyncio.Future[None] = self.loop.create_future()
        self.producer.produce(
            topic,
            value,
            key,
            headers=headers,
            on_delivery=lambda error, message: self._delivered(future, error, message),
        )
        await future

    async def stop(self) -> None:
        await asyncio.to_thread(self.producer.flush, 30)
        self.polling = False
        await asyncio.to_thread(self.poller.join)


async def sender(
    producer: BaselineProducer, topic: str, template: Template, deadline: float, name: str
) -> list[float]:
    """Send the template with a fresh ce_id, await its ack, repeat until ``deadline``; return latencies."""
    latencies: list[float] = []
    count = 0
    while time.perf_counter() < deadline:
        count += 1
        event_id = f"{name}-{count}".encode()
        headers = [(key, event_id if key == "ce_id" else value) for key, value in template.headers]
        started = time.perf_counter()
        await producer.send(topic, value=template.value, key=template.key, headers=headers)
        latencies.append(time.perf_counter() - started)
    return latencies


async def send_for(
    producer: BaselineProducer, topic: str, template: Template, seconds: float, senders: int, phase: str
) -> BaselineResult:
    """Run ``senders`` concurrent senders for ``seconds``; the figures of every acknowledged send."""
    started = time.perf_counter()
    deadline = started + seconds
    batches = await asyncio.gather(
        *(sender(producer, topic, template, deadline, f"{phase}-{n}") for n in range(senders))
    )
    duration = time.perf_counter() - started
    latencies = sorted(latency for batch in batches for latency in batch)
    return BaselineResult(
        events=len(latencies),
        duration_s=duration,
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
    )


async def baseline(
    bootstrap: str, topic: str, template: Template, seconds: int, senders: int
) -> BaselineResult:
    """A warm-up as long as wrk's, then the measured phase, with one producer."""
    producer = BaselineProducer(bootstrap)
    try:
        await send_for(producer, topic, template, WARMUP_SECONDS, senders, "baseline-warmup")
        return await send_for(producer, topic, template, seconds, senders, "baseline")
    finally:
        await producer.stop()


def baseline_process(
    bootstrap: str, topic: str, template: Template, seconds: int, senders: int, results: Queue[BaselineResult]
) -> None:
    """Entry point of the baseline process; uses uvloop when installed, as uvicorn does for the ingest."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        results.put(runner.run(baseline(bootstrap, topic, template, seconds, senders)))


def run_baseline(
    bootstrap: str, topic: str, template: Template, seconds: int, senders: int
) -> BaselineResult:
    """Run the baseline in a fresh process and return its figures."""
    context = multiprocessing.get_context("spawn")
    results: Queue[BaselineResult] = context.Queue()
    process = context.Process(
        target=baseline_process, args=(bootstrap, topic, template, seconds, senders, results)
    )
    process.start()
    try:
        while process.is_alive():
            with contextlib.suppress(queue.Empty):
                return results.get(timeout=1)
        return results.get(timeout=1)  # it may have put its figures just before exiting
    except queue.Empty:
        raise SystemExit(f"the baseline process failed (exit code {process.exitcode})") from None
    finally:
        process.terminate()  # nothing happens once it has exited
        process.join()


# --- report ---------------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "[green]met[/]" if met else "[red]not met[/]"


def report(ingest: WrkResult, base: BaselineResult, acknowledged: int, records: int) -> dict[str, Any]:
    """Print the table and the aims; return the figures for the JSON file."""
    ratio = ingest.events_per_s / base.events_per_s
    table = Table(title="Event ingest, acknowledged by Kafka")
    table.add_column("")
    table.add_column("events/s", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    for name, row in ((INGEST_ROW, ingest), (BASELINE_ROW, base)):
        table.add_row(name, f"{row.events_per_s:,.0f}", f"{row.p50_ms:.2f}", f"{row.p99_ms:.2f}")
    console.print(table)
    console.print(f"ingest / baseline: {ratio:.0%}")
    fast_enough = ingest.events_per_s >= AIM_EVENTS_PER_SECOND
    close_enough = ratio >= AIM_SHARE_OF_BASELINE
    missing = max(0, acknowledged - records)
    console.print(f"aim ≥ {AIM_EVENTS_PER_SECOND:,} events/s acknowledged: {verdict(fast_enough)}")
    console.print(f"aim ≥ {AIM_SHARE_OF_BASELINE:.0%} of the baseline: {verdict(close_enough)}")
    console.print(f"non-2xx responses: {ingest.non_2xx:,}, socket errors: {ingest.socket_errors:,}")
    console.print(
        f"records in the ingest topic: {records:,}; acknowledged (warm-up included): {acknowledged:,}; "
        + (f"[red]{missing:,} MISSING[/]" if missing else "[green]none missing[/]")
    )
    return {
        "ingest": {
            **asdict(ingest),
            "acknowledged": ingest.acknowledged,
            "events_per_s": ingest.events_per_s,
        },
        "baseline": {**asdict(base), "events_per_s": base.events_per_s},
        "ratio": ratio,
        "records_in_topic": records,
        "acknowledged_including_warmup": acknowledged,
        "missing": missing,
        "aims": {
            "events_per_s": {"aim": AIM_EVENTS_PER_SECOND, "met": fast_enough},
            "share_of_baseline": {"aim": AIM_SHARE_OF_BASELINE, "met": close_enough},
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=15, help="measured duration of each run (default 15)")
    parser.add_argument(
        "--connections", type=int, default=64, help="HTTP connections and baseline senders (default 64)"
    )
    add_common_arguments(parser, DEFAULT_JSON, "ingest's")
    return parser.parse_args(argv)


def measure_ingest(
    bootstrap: str, topic: str, port: int, connections: int, seconds: int, tmp: Path
) -> tuple[WrkResult, int]:
    """Warm-up and measured wrk runs against a fresh ingest: the measured run and all 2xx answers."""
    stamp = topic.rsplit(".", 1)[-1]
    with ingest_process(bootstrap, topic, port, tmp / "ingest.log") as url:
        console.print(f"ingest at {url} → topic {topic}; wrk warm-up {WARMUP_SECONDS}s …")
        warmup = run_wrk(url, WARMUP_SECONDS, connections, f"warmup-{stamp}")
        console.print(f"wrk {seconds}s, {connections} connections …")
        measured = run_wrk(url, seconds, connections, f"run-{stamp}")
    return measured, warmup.acknowledged + measured.acknowledged


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    ingest_topic, baseline_topic = f"bench.ingest.{stamp}", f"bench.baseline.{stamp}"
    broker_port, controller_port, ingest_port = free_ports(3, *port_range(args.ports))
    with (
        tempfile.TemporaryDirectory(prefix="infersight-bench-") as tmp,
        kafka_broker(args.bootstrap, Path(tmp) / "kafka", [broker_port, controller_port]) as bootstrap,
    ):
        topics = KafkaConfig.model_validate({"bootstrap_servers": bootstrap, "partitions": PARTITIONS})
        ensure_topics(topics, [ingest_topic, baseline_topic])
        measured, acknowledged = measure_ingest(
            bootstrap, ingest_topic, ingest_port, args.connections, args.seconds, Path(tmp)
        )
        records = records_in(bootstrap, ingest_topic)
        template = first_record(bootstrap, ingest_topic)
        console.print(
            f"baseline: {args.connections} senders, {WARMUP_SECONDS}s warm-up then {args.seconds}s …"
        )
        base = run_baseline(bootstrap, baseline_topic, template, args.seconds, args.connections)
    figures = report(measured, base, acknowledged, records)
    figures["config"] = {
        "seconds": args.seconds,
        "connections": args.connections,
        "warmup_seconds": WARMUP_SECONDS,
        "partitions": PARTITIONS,
        "local_broker": not args.bootstrap,
        "cpus": os.cpu_count(),
        "started": stamp,
    }
    write_json(args.json, figures)
    return 0 if records >= acknowledged else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
