"""Throughput and latency of the ingest (HTTP CloudEvents → Kafka, acks=all) against a bare producer.

The ingest answers 202 only once Kafka has acknowledged the event, so its cost over a plain
producer is the HTTP server, the CloudEvents parsing and the per-request bookkeeping. This
benchmark measures that cost: wrk posts KServe logger events (binary mode, one unique ce-id per
request) to a real ``infersight ingest`` process, then a bare confluent-kafka (librdkafka) producer
in its own process sends the same records (same body, key and headers) with the same concurrency,
each sender awaiting its delivery report as the ingest does. It also checks that every
acknowledged event is in the topic.

    python bench/ingest.py [--seconds 15] [--connections 5,64] [--profile PATH] [--bootstrap HOST:PORT]
                           [--json PATH]

Without ``--bootstrap`` or ``$KAFKA_BOOTSTRAP_SERVERS`` it starts the project's local broker in a
temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
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
    Profiler,
    add_common_arguments,
    cpu_seconds,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    write_json,
)
from rich.console import Console
from rich.table import Table

from infersight.config import IngestConfig, KafkaConfig
from infersight.kafkaclient import ensure_topics
from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "kserve_event.lua"
DEFAULT_JSON = BENCH_DIR / "results" / "ingest.json"
WARMUP_SECONDS = 3
#: A fresh broker answers at half speed until its JIT has compiled the produce path: the first
#: ingest run measured on it got 2,000 events/s where later ones got 4,500 (5 senders).
BROKER_WARMUP_SECONDS = 10
PARTITIONS = 6
#: Events/s an ingest drains from its spool once Kafka is back.
AIM_DRAIN = 20_000
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
    #: CPU seconds the ingest process (all its threads) used during the run; None if unread.
    cpu_s: float | None = None

    @property
    def acknowledged(self) -> int:
        """Requests answered 2xx; the ingest answers 202 or an error, never 3xx."""
        return self.requests - self.non_2xx

    @property
    def events_per_s(self) -> float:
        return self.acknowledged / self.duration_s

    @property
    def cpu_us_per_event(self) -> float | None:
        """The ingest's CPU per acknowledged event: steadier than its rate on a shared machine."""
        return None if self.cpu_s is None or not self.acknowledged else self.cpu_s / self.acknowledged * 1e6


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
def ingest_process(
    bootstrap: str, topic: str, port: int, log_path: Path, linger_ms: int, spool: Path
) -> Iterator[tuple[str, int]]:
    """Run ``infersight ingest`` producing to ``topic``; yield its URL and pid once /readyz answers 200."""
    env = {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topic,
        # The topic exists already; do not create the detection and dead-letter topics.
        "INFERSIGHT_KAFKA__CREATE_TOPICS": "false",
        "INFERSIGHT_INGEST__LOG_LEVEL": "warning",
        "INFERSIGHT_INGEST__LINGER_MS": str(linger_ms),
        "INFERSIGHT_INGEST__SPOOL__PATH": str(spool),
    }
    command = [sys.executable, "-m", "infersight", "ingest", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until_ready(process, url + "readyz", log_path)
        yield url, process.pid
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

    def __init__(self, bootstrap: str, linger_ms: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": linger_ms,
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
    bootstrap: str, topic: str, template: Template, seconds: int, senders: int, linger_ms: int
) -> BaselineResult:
    """A warm-up as long as wrk's, then the measured phase, with one producer."""
    producer = BaselineProducer(bootstrap, linger_ms)
    try:
        await send_for(producer, topic, template, WARMUP_SECONDS, senders, "baseline-warmup")
        return await send_for(producer, topic, template, seconds, senders, "baseline")
    finally:
        await producer.stop()


def baseline_process(
    bootstrap: str,
    topic: str,
    template: Template,
    seconds: int,
    senders: int,
    linger_ms: int,
    results: Queue[BaselineResult],
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
        results.put(runner.run(baseline(bootstrap, topic, template, seconds, senders, linger_ms)))


def run_baseline(
    bootstrap: str, topic: str, template: Template, seconds: int, senders: int, linger_ms: int
) -> BaselineResult:
    """Run the baseline in a fresh process and return its figures."""
    context = multiprocessing.get_context("spawn")
    results: Queue[BaselineResult] = context.Queue()
    process = context.Process(
        target=baseline_process, args=(bootstrap, topic, template, seconds, senders, linger_ms, results)
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


@dataclass(frozen=True)
class Aims:
    """What one sender count must reach; None where the issue sets no figure."""

    events_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    share_of_baseline: float | None = None

    def check(self, ingest: WrkResult, ratio: float) -> dict[str, dict[str, Any]]:
        checks = {
            "events_per_s": (self.events_per_s, ingest.events_per_s, lambda got, aim: got >= aim),
            "p50_ms": (self.p50_ms, ingest.p50_ms, lambda got, aim: got <= aim),
            "p99_ms": (self.p99_ms, ingest.p99_ms, lambda got, aim: got <= aim),
            "share_of_baseline": (self.share_of_baseline, ratio, lambda got, aim: got >= aim),
        }
        return {
            name: {"aim": aim, "got": got, "met": bool(met(got, aim))}
            for name, (aim, got, met) in checks.items()
            if aim is not None
        }


#: The aims by sender count: 5 as the KServe agent posts (one event per POST, 5 workers), 64 as a load.
AIMS = {
    5: Aims(events_per_s=3_000, p50_ms=1.0, p99_ms=5.0),
    64: Aims(share_of_baseline=0.40),
}


def report_row(table: Table, connections: int, ingest: WrkResult, base: BaselineResult) -> dict[str, Any]:
    ratio = ingest.events_per_s / base.events_per_s
    for name, row in ((INGEST_ROW, ingest), (BASELINE_ROW, base)):
        table.add_row(
            str(connections),
            name,
            f"{row.events_per_s:,.0f}",
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
            f"{ratio:.0%}" if row is ingest else "",
        )
    aims = AIMS.get(connections, Aims()).check(ingest, ratio)
    return {
        "ingest": {
            **asdict(ingest),
            "acknowledged": ingest.acknowledged,
            "events_per_s": ingest.events_per_s,
            "cpu_us_per_event": ingest.cpu_us_per_event,
        },
        "baseline": {**asdict(base), "events_per_s": base.events_per_s},
        "ratio": ratio,
        "aims": aims,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=15, help="measured duration of each run (default 15)")
    parser.add_argument(
        "--connections",
        default="5,64",
        help="HTTP connections and baseline senders, one run each (default 5,64)",
    )
    parser.add_argument(
        "--linger-ms",
        type=int,
        default=IngestConfig().linger_ms,
        help="linger.ms of the ingest's producer and of the baseline's (default: the ingest's)",
    )
    parser.add_argument(
        "--spool-events",
        type=int,
        default=100_000,
        help="events written to a spool and drained by an ingest, against a bare producer (0: skip)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy records each measured ingest run to PATH-<senders> (.txt: own time printed; "
        "else a flame graph); its figures are then disturbed",
    )
    add_common_arguments(parser, DEFAULT_JSON, "ingest's")
    return parser.parse_args(argv)


def measure_ingest(
    bootstrap: str,
    topic: str,
    port: int,
    connections: int,
    seconds: int,
    linger_ms: int,
    tmp: Path,
    profile: Path | None = None,
) -> tuple[WrkResult, int]:
    """Warm-up and measured wrk runs against a fresh ingest: the measured run and all 2xx answers.

    With ``profile``, py-spy records the ingest during the measured run (its figures are disturbed).
    """
    stamp = topic.rsplit(".", 1)[-1]
    with ingest_process(
        bootstrap, topic, port, tmp / f"ingest-{topic}.log", linger_ms, tmp / f"spool-{topic}"
    ) as (url, pid):
        console.print(f"ingest at {url} → topic {topic}; wrk warm-up {WARMUP_SECONDS}s …")
        warmup = run_wrk(url, WARMUP_SECONDS, connections, f"warmup-{stamp}")
        console.print(f"wrk {seconds}s, {connections} connections …")
        profiler = None
        if profile is not None:
            output = profile.with_name(f"{profile.stem}-{connections}{profile.suffix}")
            profiler = Profiler(output, seconds, f"the start of the {connections}-sender run")
            profiler.start(pid)
        cpu_before = cpu_seconds(pid)
        measured = run_wrk(url, seconds, connections, f"run-{stamp}")
        cpu_after = cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            measured = dataclasses.replace(measured, cpu_s=cpu_after - cpu_before)
        if profiler is not None:
            profiler.finish()
    return measured, warmup.acknowledged + measured.acknowledged


# --- spool drain ----------------------------------------------------------------------------------


def fill_spool(folder: Path, template: Template, events: int) -> float:
    """``events`` copies of the template (fresh ce-ids) appended to a spool as the ingest does; seconds."""
    from infersight.binding import from_kafka_record
    from infersight.ingest.spool import Spool

    first = from_kafka_record(template.headers, template.value)
    batch = [
        dataclasses.replace(first, attributes={**first.attributes, "id": f"spooled-{n}"})
        for n in range(events)
    ]

    async def append_all() -> float:
        spool = Spool(folder, max_bytes=1 << 40)
        started = time.perf_counter()
        # 64 writers at a time, one event per append: what 64 waiting requests hand the spool.
        for start in range(0, events, 64):
            await asyncio.gather(*(spool.append([event]) for event in batch[start : start + 64]))
        elapsed = time.perf_counter() - started
        spool.close()
        return elapsed

    return asyncio.run(append_all())


def spool_events_left(url: str) -> float | None:
    try:
        with urllib.request.urlopen(f"{url}metrics", timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    found = re.search(r"^infersight_ingest_spool_events (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def measure_drain(
    bootstrap: str, topic: str, port: int, template: Template, events: int, linger_ms: int, tmp: Path
) -> dict[str, Any]:
    """Spool ``events`` (as an outage would), then time an ingest that drains them to Kafka."""
    folder = tmp / "spool-drain"
    # A spool file is drained by the next ingest only once nobody holds it: fill it from this process.
    append_s = fill_spool(folder, template, events)
    console.print(f"spooled {events:,} events in {append_s:.1f}s; draining with a fresh ingest …")
    with ingest_process(bootstrap, topic, port, tmp / "ingest-drain.log", linger_ms, folder) as (url, _):
        # The clock starts at the first sight of the drain under way (start-up is not the drain's).
        while (left := spool_events_left(url)) is None or left >= events:
            time.sleep(0.01)
        first_left, started = left, time.perf_counter()
        while left > 0:
            time.sleep(0.01)
            left = spool_events_left(url) or 0.0
        drain_s = time.perf_counter() - started
    # The rate counts what was drained after the clock started.
    drained_timed = int(first_left)
    in_topic = records_in(bootstrap, topic)
    return {
        "events": events,
        "append_s": append_s,
        "drain_s": drain_s,
        "drained_timed": drained_timed,
        "in_topic": in_topic,
    }


def bare_producer_rate(bootstrap: str, topic: str, template: Template, events: int, linger_ms: int) -> float:
    """Events/s of a bare producer sending ``events`` records at once and waiting for every ack."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": linger_ms}
    )
    started = time.perf_counter()
    for n in range(events):
        headers = [
            (key, f"bare-{n}".encode() if key == "ce_id" else value) for key, value in template.headers
        ]
        while True:
            try:
                producer.produce(topic, template.value, template.key, headers=headers)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    return events / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    counts = [int(value) for value in args.connections.split(",") if value.strip()]
    ports = free_ports(4 + len(counts), *port_range(args.ports))
    broker_port, controller_port, drain_port, warmup_port = ports[:4]
    ingest_ports = ports[4:]
    table = Table(
        title=f"Event ingest, acknowledged by Kafka (linger.ms={args.linger_ms}, one event per POST)"
    )
    for column in ("senders", "", "events/s", "p50 ms", "p99 ms", "of baseline"):
        table.add_column(column, justify="left" if column in ("", "senders") else "right")
    figures: dict[str, Any] = {"runs": {}}
    missing = 0
    with (
        tempfile.TemporaryDirectory(prefix="infersight-bench-") as tmp,
        kafka_broker(args.bootstrap, Path(tmp) / "kafka", [broker_port, controller_port]) as bootstrap,
    ):
        warmup_topic = f"bench.warmup.{stamp}"
        topics = KafkaConfig.model_validate({"bootstrap_servers": bootstrap, "partitions": PARTITIONS})
        ensure_topics(topics, [warmup_topic])
        console.print(f"warming the broker up: {BROKER_WARMUP_SECONDS}s of ingest traffic …")
        measure_ingest(
            bootstrap,
            warmup_topic,
            warmup_port,
            max(counts),
            BROKER_WARMUP_SECONDS,
            args.linger_ms,
            Path(tmp),
        )
        for connections, port in zip(counts, ingest_ports, strict=True):
            ingest_topic = f"bench.ingest.{stamp}.c{connections}"
            baseline_topic = f"bench.baseline.{stamp}.c{connections}"
            ensure_topics(topics, [ingest_topic, baseline_topic])
            measured, acknowledged = measure_ingest(
                bootstrap,
                ingest_topic,
                port,
                connections,
                args.seconds,
                args.linger_ms,
                Path(tmp),
                args.profile,
            )
            records = records_in(bootstrap, ingest_topic)
            template = first_record(bootstrap, ingest_topic)
            console.print(
                f"baseline: {connections} senders, {WARMUP_SECONDS}s warm-up then {args.seconds}s …"
            )
            base = run_baseline(
                bootstrap, baseline_topic, template, args.seconds, connections, args.linger_ms
            )
            row = report_row(table, connections, measured, base)
            row["records_in_topic"], row["acknowledged_including_warmup"] = records, acknowledged
            row["missing"] = max(0, acknowledged - records)
            row["non_2xx"], row["socket_errors"] = measured.non_2xx, measured.socket_errors
            missing += row["missing"]
            figures["runs"][str(connections)] = row
        if args.spool_events:
            drain_topic, bare_topic = f"bench.drain.{stamp}", f"bench.bare.{stamp}"
            ensure_topics(topics, [drain_topic, bare_topic])
            drained = measure_drain(
                bootstrap, drain_topic, drain_port, template, args.spool_events, args.linger_ms, Path(tmp)
            )
            bare = bare_producer_rate(bootstrap, bare_topic, template, args.spool_events, args.linger_ms)
            drained["events_per_s"] = drained["drained_timed"] / drained["drain_s"]
            drained["bare_producer_events_per_s"] = bare
            drained["aims"] = {
                "events_per_s": {
                    "aim": AIM_DRAIN,
                    "got": drained["events_per_s"],
                    "met": drained["events_per_s"] >= AIM_DRAIN,
                }
            }
            missing += max(0, args.spool_events - drained["in_topic"])
            figures["drain"] = drained
    console.print(table)
    for connections, row in figures["runs"].items():
        for name, aim in row["aims"].items():
            console.print(
                f"{connections} senders: {name} {aim['got']:,.2f}, aim {aim['aim']:,}: {verdict(aim['met'])}"
            )
        cpu = row["ingest"]["cpu_us_per_event"]
        if cpu is not None:
            console.print(f"{connections} senders: ingest CPU {cpu:.0f} µs per event (all its threads)")
        console.print(
            f"{connections} senders: non-2xx {row['non_2xx']:,}, socket errors {row['socket_errors']:,}, "
            f"acknowledged {row['acknowledged_including_warmup']:,}, in the topic {row['records_in_topic']:,}"
        )
    if "drain" in figures:
        drained = figures["drain"]
        appended = drained["events"] / drained["append_s"]
        console.print(
            f"spool: {drained['events']:,} events appended in {drained['append_s']:.1f}s "
            f"({appended:,.0f}/s, 64 requests at a time)"
        )
        console.print(
            f"spool: drained in {drained['drain_s']:.1f}s, {drained['events_per_s']:,.0f} events/s "
            f"(bare producer {drained['bare_producer_events_per_s']:,.0f}/s); aim {AIM_DRAIN:,}: "
            f"{verdict(drained['aims']['events_per_s']['met'])}; in the topic {drained['in_topic']:,}"
        )
    figures["config"] = {
        "seconds": args.seconds,
        "connections": counts,
        "linger_ms": args.linger_ms,
        "warmup_seconds": WARMUP_SECONDS,
        "partitions": PARTITIONS,
        "local_broker": not args.bootstrap,
        "cpus": os.cpu_count(),
        "started": stamp,
    }
    write_json(args.json, figures)
    if missing:
        console.print(f"[red]{missing:,} acknowledged events are MISSING from Kafka[/]")
    return 1 if missing else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
