"""Soak: the whole pipeline for minutes at half its maximum sustained rate, memory and lag watched.

One ingest and one worker (8 models, each with a saved KSDrift and IForest; the SQLite store) run
as users run them, on a local broker (or ``--bootstrap``). Rates are in inferences per second: an
inference is a KServe request/response pair, two events, two POSTs (the response once the request
has its answer, as the KServe logger sends them).

1. Probe (unless ``--rate`` is given): 64 closed-loop senders send pairs as fast as they are
   answered for ``--probe-seconds``. The pipeline's maximum sustained rate is the lower of the
   inferences acknowledged per second (both halves answered 202) and the inferences stored per
   second (a linear fit of the store's row count over the probe, its first seconds left out).
   Then the worker catches up before the soak starts.
2. Soak: pairs at half that rate for ``--minutes``, open loop: each pair leaves at its scheduled
   time whatever happened to the ones before (a pool of connections; a pair waiting for one counts
   as in flight). Every ``--sample-seconds`` it records the resident memory (RSS, with children)
   of the ingest and of the worker, the worker group's lag on the payloads topic (end offsets minus
   committed offsets) and the events sent and acknowledged and rows stored since the last sample.
3. Once the worker has caught up, the acknowledged inferences that are not in the store with both
   halves are lost; any loss (probe included) makes it exit 1. Memory levelled off when the linear
   fit of RSS over the second half of the soak grows less than ``--tolerance`` MB/min.

The worker remembers handed-on inferences for ``dedupe_seconds`` (600 by default) to drop
duplicates: memory that grows by design until that window is full. The soak sets it to a quarter
of the soak (at most 600 s), so that the window is full before the second half is judged.

    python bench/soak.py [--minutes 10] [--rate INFERENCES_PER_S] [--probe-seconds 30]
                         [--sample-seconds 10] [--tolerance 1.0]
                         [--bootstrap HOST:PORT] [--json PATH] [--ports LOW-HIGH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from common import (
    ConsumerLag,
    add_common_arguments,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    rss_bytes,
    write_json,
)
from detectors import save_detectors, write_config
from rich.console import Console
from rich.table import Table
from worker import MODELS, NAMESPACE, PARTITIONS, log_problems, log_tail, model_names

from infersight.detectors.loading import use_legacy_keras
from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE
from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "soak.json"
FEATURES = 4
PROBE_SENDERS = 64
#: Seconds of the probe left out of the stored rate: the worker's first fetches and batches.
PROBE_RAMP_SECONDS = 5
#: The paced sender's connections; pairs due while all are busy wait for one, still on the clock.
CONNECTIONS = 256
REQUEST_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 180
#: Catching up ends when everything is stored, or when nothing was for this long with no lag
#: (longer than the pairing timeout, after which a lone half is stored alone).
DRAIN_STALL_SECONDS = 60
DRAIN_TIMEOUT_SECONDS = 600
DEDUPE_SECONDS_MAX = 600
MB = 1024 * 1024
TABLE_WIDTH = 120
#: Shorter soaks say so next to the memory verdict: minutes of warm-up can look like growth.
JUDGED_MINUTES = 10

console = Console(soft_wrap=True)
wide = Console(width=max(console.width, TABLE_WIDTH))  # a pipe gets 80 columns: too few for the tables


# --- traffic --------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one phase sent; an inference is acknowledged when both of its events were answered 202."""

    prefix: str
    events_sent: int = 0
    events_acked: int = 0
    events_refused: int = 0  # answered, not 202
    events_failed: int = 0  # no answer: connection error or timeout
    pairs_started: int = 0
    pairs_done: int = 0
    acked_ids: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return self.pairs_started - self.pairs_done


def headers(request_id: str, event_type: str, model: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": request_id,
        "Ce-Source": "http://soak-predictor/",
        "Ce-Type": event_type,
        "Ce-Inferenceservicename": model,
        "Ce-Namespace": NAMESPACE,
        "Ce-Endpoint": "default",
    }


class Client:
    """Sends KServe pairs through the ingest, spread over the models in turn."""

    def __init__(self, session: Any, url: str, models: list[str]) -> None:
        self.session, self.url, self.models = session, url, models
        self.rng = random.Random(0)

    async def post(self, tally: Tally, request_id: str, event_type: str, model: str, body: bytes) -> bool:
        import aiohttp

        tally.events_sent += 1
        try:
            async with self.session.post(
                self.url, headers=headers(request_id, event_type, model), data=body
            ) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            tally.events_failed += 1
            return False
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != 202:
            tally.events_refused += 1
            return False
        tally.events_acked += 1
        return True

    async def pair(self, tally: Tally, number: int) -> None:
        request_id = f"{tally.prefix}-{number}"
        model = self.models[number % len(self.models)]
        row = [round(self.rng.gauss(0, 1), 4) for _ in range(FEATURES)]
        tally.pairs_started += 1
        try:
            first = await self.post(
                tally, request_id, KSERVE_REQUEST, model, orjson.dumps({"instances": [row]})
            )
            response = orjson.dumps({"predictions": [int(row[0] > 0)]})
            second = await self.post(tally, request_id, KSERVE_RESPONSE, model, response)
            if first and second:
                tally.acked_ids.append(request_id)
        finally:
            tally.pairs_done += 1


@contextlib.asynccontextmanager
async def client(url: str, models: list[str], connections: int) -> Any:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield Client(session, url, models)


async def closed_loop(sender: Client, tally: Tally, seconds: float, senders: int) -> float:
    """``senders`` loops, each sending its next pair as soon as the last is answered; the seconds taken."""
    numbers = itertools.count()
    started = time.perf_counter()
    deadline = started + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            await sender.pair(tally, next(numbers))

    await asyncio.gather(*(loop() for _ in range(senders)))
    return time.perf_counter() - started


@dataclass
class Schedule:
    """How well the paced sender kept its schedule."""

    pairs: int = 0
    max_late_s: float = 0.0  # the most a pair left after its scheduled time
    max_in_flight: int = 0


async def open_loop(sender: Client, tally: Tally, rate: float, seconds: float) -> Schedule:
    """Pair ``n`` leaves at ``start + n / rate`` whether or not earlier pairs were answered."""
    schedule = Schedule(pairs=round(rate * seconds))
    running: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    number = 0
    while number < schedule.pairs:
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        schedule.max_late_s = max(schedule.max_late_s, now - (start + number / rate))
        while number < schedule.pairs and start + number / rate <= now:
            task = asyncio.create_task(sender.pair(tally, number))
            running.add(task)
            task.add_done_callback(running.discard)
            number += 1
        schedule.max_in_flight = max(schedule.max_in_flight, tally.in_flight)
    while running:
        await asyncio.wait(list(running))
    return schedule


# --- the store, the processes, the samples --------------------------------------------------------


def stored_rows(database: Path) -> int:
    """Rows in the store (an index scan); 0 before the worker has created it."""
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
            return int(connection.execute("select count(*) from inferences").fetchone()[0])
    except sqlite3.OperationalError:  # no such table yet
        return 0


def stored_ids(database: Path, prefix: str) -> tuple[set[str], set[str], int]:
    """Request ids stored with both halves, those stored with one, and rows beyond one per id."""
    query = (
        "select request_id, request_event_id is not null and response_event_id is not null "
        "from inferences where request_id >= ? and request_id < ?"
    )
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(query, (f"{prefix}-", f"{prefix}.")).fetchall()
    paired = {request_id for request_id, both in rows if both}
    alone = {request_id for request_id, both in rows if not both} - paired
    return paired, alone, len(rows) - len(paired | alone)


@dataclass(frozen=True)
class Pipeline:
    url: str
    database: Path
    ingest: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    group: str
    topic: str
    logs: Path

    def check_alive(self) -> None:
        for name, process in (("ingest", self.ingest), ("worker", self.worker)):
            if process.poll() is not None:
                log = self.logs / f"{name}.log"
                raise SystemExit(f"the {name} exited with {process.returncode}:\n{log_tail(log)}")


@contextlib.contextmanager
def pipeline(
    bootstrap: str, folder: Path, ports: list[int], models: list[str], dedupe_seconds: float
) -> Iterator[Pipeline]:
    """The ingest and one worker: every model with KSDrift and IForest, the SQLite store."""
    saved = save_detectors(folder, FEATURES)
    config = write_config(folder / "infersight.yaml", saved, models)
    database = folder / "store.db"
    topic = f"bench-soak-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    group = f"{topic}-worker"
    env = {
        **os.environ,
        "INFERSIGHT_CONFIG": str(config),
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__PARTITIONS": str(PARTITIONS),
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topic,
        "INFERSIGHT_KAFKA__TOPICS__DETECTIONS": f"{topic}-detections",
        "INFERSIGHT_KAFKA__TOPICS__DEADLETTER": f"{topic}-deadletter",
        "INFERSIGHT_INGEST__LOG_LEVEL": "warning",
        "INFERSIGHT_WORKER__GROUP_ID": group,
        "INFERSIGHT_WORKER__STATE_DIR": str(folder / "worker"),
        "INFERSIGHT_WORKER__METRICS_HOST": "127.0.0.1",
        "INFERSIGHT_WORKER__METRICS_PORT": str(ports[1]),
        "INFERSIGHT_WORKER__DEDUPE_SECONDS": str(dedupe_seconds),
        "INFERSIGHT_DETECTIONS__STATE_URI": str(folder / "state"),
        "INFERSIGHT_STORE__URL": f"sqlite:///{database}",
    }
    logs = folder / "logs"
    logs.mkdir()
    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, arguments in (
            ("worker", ["worker"]),
            ("ingest", ["ingest", "--host", "127.0.0.1", "--port", str(ports[0])]),
        ):
            with (logs / f"{name}.log").open("wb") as log:
                started[name] = subprocess.Popen(
                    [sys.executable, "-m", "infersight", *arguments],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        running = Pipeline(
            f"http://127.0.0.1:{ports[0]}/",
            database,
            started["ingest"],
            started["worker"],
            group,
            topic,
            logs,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not (_answers(f"{running.url}readyz") and _answers(f"http://127.0.0.1:{ports[1]}/metrics")):
            running.check_alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"the ingest or the worker did not start; logs in {logs}")
            time.sleep(0.5)
        yield running
    finally:
        for process in reversed(started.values()):
            stop(process, timeout=30)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


@dataclass(frozen=True)
class Sample:
    t_s: float
    events_sent: int
    events_acked: int
    rows_stored: int
    lag: int | None
    ingest_rss_mb: float | None
    worker_rss_mb: float | None
    in_flight: int


class Watcher:
    """Takes samples of one phase; the blocking reads run in a thread, off the sender's loop."""

    def __init__(self, running: Pipeline, lag: ConsumerLag, tally: Tally) -> None:
        self.running, self.lag, self.tally = running, lag, tally
        self.rows_before = stored_rows(running.database)
        self.started = time.perf_counter()
        self.samples: list[Sample] = []

    def _reads(self) -> tuple[int, int | None, float | None, float | None]:
        self.running.check_alive()
        rows = stored_rows(self.running.database) - self.rows_before
        lag: int | None = None
        with contextlib.suppress(Exception):  # a sample without lag rather than a failed soak
            lag = self.lag()
        ingest, worker = rss_bytes(self.running.ingest.pid), rss_bytes(self.running.worker.pid)
        return rows, lag, None if ingest is None else ingest / MB, None if worker is None else worker / MB

    async def sample(self) -> Sample:
        t_s = time.perf_counter() - self.started
        sent, acked, in_flight = self.tally.events_sent, self.tally.events_acked, self.tally.in_flight
        rows, lag, ingest, worker = await asyncio.to_thread(self._reads)
        taken = Sample(t_s, sent, acked, rows, lag, ingest, worker, in_flight)
        self.samples.append(taken)
        return taken

    async def every(self, seconds: float, stop: asyncio.Event) -> None:
        """A sample now, every ``seconds`` and when ``stop`` is set; each printed as it comes."""
        while True:
            before = self.samples[-1] if self.samples else None
            sample = await self.sample()
            sent, acked, stored = _rates(sample, before)
            console.print(
                f"{sample.t_s:5.0f} s  events/s sent {sent:>5} acked {acked:>5}  "
                f"inferences/s stored {stored:>5}  "
                f"lag {_value(sample.lag):>6}  RSS ingest {_mb(sample.ingest_rss_mb)} "
                f"worker {_mb(sample.worker_rss_mb)}",
                highlight=False,
            )
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)


async def wait_stored(running: Pipeline, lag: ConsumerLag, tally: Tally) -> float:
    """Until every acknowledged inference is stored with no lag, or nothing more comes; the seconds."""
    started = time.perf_counter()
    expected = set(tally.acked_ids)
    last, last_change = -1, started
    while time.perf_counter() - started < DRAIN_TIMEOUT_SECONDS:
        running.check_alive()
        paired, _, _ = await asyncio.to_thread(stored_ids, running.database, tally.prefix)
        behind: int | None = None
        with contextlib.suppress(Exception):
            behind = await asyncio.to_thread(lag)
        stored = len(paired & expected)
        if stored == len(expected) and behind in (0, None):
            break
        now = time.perf_counter()
        if stored != last:
            last, last_change = stored, now
        elif behind in (0, None) and now - last_change > DRAIN_STALL_SECONDS:
            break
        await asyncio.sleep(2)
    return time.perf_counter() - started


@dataclass
class Outcome:
    """What became of one phase's acknowledged inferences."""

    inferences_acked: int
    inferences_stored: int  # acknowledged and stored with both halves
    stored_one_half: int  # acknowledged, stored, but the other half is missing
    extra_rows: int  # rows beyond one per request id
    caught_up_s: float

    @property
    def lost(self) -> int:
        return self.inferences_acked - self.inferences_stored


async def outcome(running: Pipeline, lag: ConsumerLag, tally: Tally) -> Outcome:
    caught_up = await wait_stored(running, lag, tally)
    paired, alone, extra = stored_ids(running.database, tally.prefix)
    expected = set(tally.acked_ids)
    return Outcome(len(expected), len(paired & expected), len(alone & expected), extra, caught_up)


# --- the phases -----------------------------------------------------------------------------------


@dataclass
class Probe:
    seconds: float
    tally: Tally
    acked_per_s: float  # inferences
    stored_per_s: float  # inferences
    outcome: Outcome | None = None

    @property
    def sustained_per_s(self) -> float:
        return min(self.acked_per_s, self.stored_per_s)


async def warm_up(running: Pipeline, lag: ConsumerLag, models: list[str], stamp: str) -> None:
    """A few pairs through the whole pipeline: the worker has joined its group and loaded its detectors."""
    tally = Tally(f"warm-{stamp}")
    async with client(running.url, models, PROBE_SENDERS) as sender:
        await asyncio.gather(*(sender.pair(tally, number) for number in range(2 * len(models))))
    done = await outcome(running, lag, tally)
    if done.lost:
        raise SystemExit(f"the warm-up's inferences did not reach the store; logs in {running.logs}")


async def probe(running: Pipeline, lag: ConsumerLag, models: list[str], stamp: str, seconds: float) -> Probe:
    tally = Tally(f"probe-{stamp}")
    counts: list[tuple[float, int]] = []
    stop = asyncio.Event()
    started = time.perf_counter()

    async def count_rows() -> None:
        while not stop.is_set():
            rows = await asyncio.to_thread(stored_rows, running.database)
            counts.append((time.perf_counter() - started, rows))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)

    counter = asyncio.create_task(count_rows())
    async with client(running.url, models, PROBE_SENDERS) as sender:
        duration = await closed_loop(sender, tally, seconds, PROBE_SENDERS)
    stop.set()
    await counter
    steady = [(t, rows) for t, rows in counts if t >= min(PROBE_RAMP_SECONDS, seconds / 4)]
    stored_per_s = 0.0
    if len(steady) >= 2:
        stored_per_s = float(np.polyfit([t for t, _ in steady], [rows for _, rows in steady], 1)[0])
    result = Probe(duration, tally, len(tally.acked_ids) / duration, stored_per_s)
    console.print(
        f"probe: {len(tally.acked_ids):,} inferences acknowledged in {duration:.0f} s "
        f"({result.acked_per_s:,.0f}/s), stored at {stored_per_s:,.0f}/s → sustained "
        f"{result.sustained_per_s:,.0f} inferences/s; waiting for the worker to catch up …"
    )
    result.outcome = await outcome(running, lag, tally)
    console.print(f"caught up in {result.outcome.caught_up_s:.0f} s")
    return result


@dataclass
class Soak:
    rate: float  # inferences per second
    seconds: float
    tally: Tally
    schedule: Schedule
    samples: list[Sample]
    drained: Sample | None = None
    outcome: Outcome | None = None


def _rates(sample: Sample, before: Sample | None) -> tuple[str, str, str]:
    """Events sent and acknowledged and rows stored per second since ``before`` ("" for the first)."""
    if before is None or sample.t_s <= before.t_s:
        return "", "", ""
    span = sample.t_s - before.t_s
    return (
        f"{(sample.events_sent - before.events_sent) / span:,.0f}",
        f"{(sample.events_acked - before.events_acked) / span:,.0f}",
        f"{(sample.rows_stored - before.rows_stored) / span:,.0f}",
    )


async def soak(
    running: Pipeline, lag: ConsumerLag, models: list[str], stamp: str, rate: float, args: argparse.Namespace
) -> Soak:
    seconds = args.minutes * 60
    tally = Tally(f"soak-{stamp}")
    watcher = Watcher(running, lag, tally)
    stop = asyncio.Event()
    watching = asyncio.create_task(watcher.every(args.sample_seconds, stop))
    async with client(running.url, models, CONNECTIONS) as sender:
        try:
            schedule = await open_loop(sender, tally, rate, seconds)
        finally:
            stop.set()
            await watching
    result = Soak(rate, seconds, tally, schedule, list(watcher.samples))
    console.print("soak sent; waiting for the worker to catch up …")
    result.outcome = await outcome(running, lag, tally)
    result.drained = await watcher.sample()
    return result


async def run_phases(
    running: Pipeline, bootstrap: str, models: list[str], args: argparse.Namespace
) -> tuple[Probe | None, Soak]:
    stamp = datetime.now(UTC).strftime("%H%M%S")
    lag = ConsumerLag(bootstrap, running.group, running.topic)
    try:
        await warm_up(running, lag, models, stamp)
        measured = None
        rate = args.rate
        if rate is None:
            console.print(f"probe: {PROBE_SENDERS} closed-loop senders for {args.probe_seconds:.0f} s …")
            measured = await probe(running, lag, models, stamp, args.probe_seconds)
            rate = measured.sustained_per_s / 2
            if rate <= 0:
                raise SystemExit("the probe stored nothing: no rate to soak at")
        console.print(
            f"soak: {rate:,.1f} inferences/s ({2 * rate:,.1f} events/s), open loop, "
            f"for {args.minutes:g} min; a sample every {args.sample_seconds:g} s"
        )
        return measured, await soak(running, lag, models, stamp, rate, args)
    finally:
        lag.close()


# --- the verdict ------------------------------------------------------------------------------------


def trend(points: list[tuple[float, float]], tolerance: float) -> dict[str, Any]:
    """RSS start, peak and end, growth and fitted MB/min over each half, and whether it levelled off."""
    if len(points) < 4:
        return {"verdict": "too few samples"}
    times = np.asarray([t for t, _ in points]) / 60
    values = np.asarray([value for _, value in points])
    middle = times[-1] / 2
    halves = (times <= middle, times >= middle)
    slopes = [
        float(np.polyfit(times[half], values[half], 1)[0]) if half.sum() >= 2 else float("nan")
        for half in halves
    ]
    at_middle = float(np.interp(middle, times, values))
    levelled = bool(slopes[1] <= tolerance)
    if levelled:
        verdict = "levelled off"
    elif slopes[1] < slopes[0] / 2:
        verdict = "still growing, slowing"
    else:
        verdict = "still growing"
    return {
        "start_mb": float(values[0]),
        "peak_mb": float(values.max()),
        "end_mb": float(values[-1]),
        "first_half_growth_mb": at_middle - float(values[0]),
        "second_half_growth_mb": float(values[-1]) - at_middle,
        "first_half_mb_per_min": slopes[0],
        "second_half_mb_per_min": slopes[1],
        "levelled_off": levelled,
        "verdict": verdict,
    }


def memory(samples: list[Sample], tolerance: float) -> dict[str, dict[str, Any]]:
    return {
        name: trend(
            [(s.t_s, value) for s in samples if (value := getattr(s, f"{name}_rss_mb")) is not None],
            tolerance,
        )
        for name in ("ingest", "worker")
    }


def _mb(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f} MB"


def _value(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def show_samples(samples: list[Sample], drained: Sample | None) -> None:
    table = Table(title="soak samples (an inference: two events, one row in the store)")
    columns = ("t", "sent events/s", "acked events/s", "stored inferences/s", "lag (events)")
    for column in (*columns, "ingest RSS", "worker RSS", "inferences in flight"):
        table.add_column(column, justify="right")
    for before, sample in zip([None, *samples], samples, strict=False):
        table.add_row(
            f"{sample.t_s:,.0f} s",
            *_rates(sample, before),
            _value(sample.lag),
            _mb(sample.ingest_rss_mb),
            _mb(sample.worker_rss_mb),
            f"{sample.in_flight:,}",
        )
        before = sample
    if drained is not None:
        table.add_row(
            "caught up",
            "",
            "",
            "",
            _value(drained.lag),
            _mb(drained.ingest_rss_mb),
            _mb(drained.worker_rss_mb),
            "",
        )
    wide.print(table)


def summary(measured: Probe | None, result: Soak, tolerance: float) -> dict[str, Any]:
    assert result.outcome is not None
    tally, done = result.tally, result.outcome
    lags = [sample.lag for sample in result.samples if sample.lag is not None]
    trends = memory(result.samples, tolerance)
    table = Table(title="soak summary", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    if measured is not None:
        table.add_row(
            "probe: acknowledged / stored inferences/s",
            f"{measured.acked_per_s:,.0f} / {measured.stored_per_s:,.0f}",
        )
        table.add_row("probe: maximum sustained inferences/s", f"{measured.sustained_per_s:,.0f}")
        if measured.outcome is not None:
            table.add_row("probe: acknowledged inferences lost", f"{measured.outcome.lost:,}")
    table.add_row(
        "soak rate",
        f"{result.rate:,.1f} inferences/s ({2 * result.rate:,.1f} events/s) for {result.seconds / 60:g} min",
    )
    table.add_row("events sent / acknowledged (202)", f"{tally.events_sent:,} / {tally.events_acked:,}")
    table.add_row("events refused / without answer", f"{tally.events_refused:,} / {tally.events_failed:,}")
    table.add_row(
        "inferences sent / acknowledged / stored",
        f"{tally.pairs_started:,} / {done.inferences_acked:,} / {done.inferences_stored:,}",
    )
    table.add_row(
        "inferences lost (acknowledged, not stored paired)",
        f"[red]{done.lost:,}[/]" if done.lost else "[green]0[/]",
    )
    table.add_row("  of which stored with one half only", f"{done.stored_one_half:,}")
    table.add_row("rows beyond one per inference", f"{done.extra_rows:,}")
    table.add_row(
        "lag max / at the end of sending / caught up",
        f"{_value(max(lags) if lags else None)} / {_value(result.samples[-1].lag)} / "
        f"{_value(result.drained.lag if result.drained else None)} events",
    )
    table.add_row("caught up after sending", f"{done.caught_up_s:,.0f} s")
    table.add_row(
        "sender: latest departure / most in flight",
        f"{result.schedule.max_late_s * 1000:,.0f} ms / {result.schedule.max_in_flight:,} inferences",
    )
    for name, figures in trends.items():
        if "start_mb" not in figures:
            table.add_row(f"{name} RSS", figures["verdict"])
            continue
        table.add_row(
            f"{name} RSS start / peak / end",
            f"{figures['start_mb']:,.1f} / {figures['peak_mb']:,.1f} / {figures['end_mb']:,.1f} MB",
        )
        colour = "green" if figures["levelled_off"] else "yellow"
        table.add_row(
            f"{name} RSS MB/min, first / second half",
            f"{figures['first_half_mb_per_min']:+.2f} / {figures['second_half_mb_per_min']:+.2f}: "
            f"[{colour}]{figures['verdict']}[/]",
        )
    short = result.seconds < JUDGED_MINUTES * 60
    if short:
        table.add_row("", f"[yellow]a soak under {JUDGED_MINUTES} min is too short to judge memory by[/]")
    wide.print(table)
    return {
        "probe": None
        if measured is None
        else {
            "seconds": measured.seconds,
            "senders": PROBE_SENDERS,
            "inferences_acked": len(measured.tally.acked_ids),
            "acked_inferences_per_s": measured.acked_per_s,
            "stored_inferences_per_s": measured.stored_per_s,
            "sustained_inferences_per_s": measured.sustained_per_s,
            "events_refused": measured.tally.events_refused,
            "events_failed": measured.tally.events_failed,
            "outcome": measured.outcome and {**asdict(measured.outcome), "lost": measured.outcome.lost},
        },
        "soak": {
            "rate_inferences_per_s": result.rate,
            "rate_events_per_s": 2 * result.rate,
            "seconds": result.seconds,
            "events_sent": tally.events_sent,
            "events_acked": tally.events_acked,
            "events_refused": tally.events_refused,
            "events_failed": tally.events_failed,
            "statuses": {str(status): count for status, count in sorted(tally.statuses.items())},
            "inferences_sent": tally.pairs_started,
            **asdict(done),
            "lost": done.lost,
            "max_lag": max(lags) if lags else None,
            "lag_at_end_of_sending": result.samples[-1].lag,
            "lag_caught_up": result.drained.lag if result.drained else None,
            "sender_max_late_s": result.schedule.max_late_s,
            "sender_max_in_flight": result.schedule.max_in_flight,
        },
        "memory": trends,
        "memory_judged_too_short": short,
        "samples": [asdict(sample) for sample in result.samples],
        "caught_up_sample": result.drained and asdict(result.drained),
    }


def show_log_problems(logs: Path) -> list[str]:
    found = []
    for name in ("ingest", "worker"):
        for line in log_problems(logs / f"{name}.log"):
            console.print(f"[yellow]{name} log:[/] {line}", highlight=False)
            found.append(f"{name}: {line}")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak (default 10)")
    parser.add_argument(
        "--rate",
        type=float,
        help="inferences (request/response pairs, two events each) per second; "
        "default: half the maximum sustained rate found by the probe",
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=30.0, help="length of the rate probe (default 30)"
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=10.0, help="time between samples (default 10)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="RSS growth in MB/min over the second half still called levelled off (default 1.0)",
    )
    add_common_arguments(parser, DEFAULT_JSON, "ingest, the worker's metrics and a local broker")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.probe_seconds <= 0 or args.sample_seconds <= 0:
        parser.error("--minutes, --probe-seconds and --sample-seconds must be positive")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    use_legacy_keras()  # before anything imports alibi-detect
    started = datetime.now(UTC)
    dedupe_seconds = min(DEDUPE_SECONDS_MAX, args.minutes * 60 / 4)
    models = model_names(MODELS, PARTITIONS)
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with tempfile.TemporaryDirectory(prefix="infersight-bench-soak-") as temp:
        folder = Path(temp)
        ports = free_ports(4, *port_range(args.ports))
        with (
            kafka_broker(args.bootstrap, folder / "kafka", ports[2:]) as bootstrap,
            pipeline(bootstrap, folder, ports[:2], models, dedupe_seconds) as running,
        ):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                measured, result = runner.run(run_phases(running, bootstrap, models, args))
            show_samples(result.samples, result.drained)
            figures = summary(measured, result, args.tolerance)
            problems = show_log_problems(running.logs)
    figures["log_problems"] = problems
    figures["config"] = {
        "minutes": args.minutes,
        "rate_given": args.rate,
        "probe_seconds": args.probe_seconds,
        "sample_seconds": args.sample_seconds,
        "tolerance_mb_per_min": args.tolerance,
        "models": len(models),
        "features": FEATURES,
        "partitions": PARTITIONS,
        "detectors": ["KSDrift", "IForest"],
        "store": "sqlite",
        "dedupe_seconds": dedupe_seconds,
        "connections": CONNECTIONS,
        "rss": "psutil" if _has_psutil() else "/proc",
        "local_broker": not args.bootstrap,
        "cpus": os.cpu_count(),
        "started": started.isoformat(timespec="seconds"),
    }
    write_json(args.json, figures)
    lost = figures["soak"]["lost"] + ((figures["probe"] or {}).get("outcome") or {}).get("lost", 0)
    if lost:
        console.print(f"[red]{lost:,} acknowledged inferences were not stored[/]")
    return 1 if lost else 0


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        console.print("interrupted; the processes it started are stopped")
        sys.exit(130)
