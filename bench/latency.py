"""End-to-end latency at a steady rate: from the HTTP POST to the row in the store and to the metric.

One ingest and one worker (KSDrift and IForest on one model, the SQLite store) run as users run
them. A client sends KServe request/response pairs through the ingest at ``--rate`` events per
second for ``--seconds``; an inference's clock starts when its response is POSTed (the event that
completes it). It stops when the row is in the store (its ``stored_at``) and when the worker's
``infersight_records_total`` first counts it (polled every 50 ms; one model, one partition, so
records are counted in the order they were sent). The same-run baseline is the ingest's own
answer time: POST to 202, which already includes Kafka's acknowledgement.

    python bench/latency.py [--rate 1000] [--seconds 30] [--bootstrap HOST:PORT] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from common import (
    add_common_arguments,
    exit_on_sigterm,
    free_ports,
    kafka_broker,
    port_range,
    write_json,
)
from detectors import NAMESPACE, save_detectors, write_config
from rich.console import Console
from rich.table import Table

from tests.helpers import stop

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "latency.json"
MODEL = "latency"
FEATURES = 4
METRIC_POLL_SECONDS = 0.05
SENDERS = 32
DRAIN_SECONDS = 60
RECORDS = re.compile(r"^infersight_records_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)

console = Console(soft_wrap=True)


@dataclass
class Sent:
    """When each pair's response was POSTed, and how long each POST took to be answered."""

    ids: list[str]
    completed_at: list[float]
    answer_seconds: list[float]
    refused: int = 0


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = np.sort(np.asarray(values))
    return float(np.percentile(ordered, 50)), float(np.percentile(ordered, 99))


def headers(request_id: str, kind: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": request_id,
        "Ce-Source": "http://latency-predictor/",
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Inferenceservicename": MODEL,
        "Ce-Namespace": NAMESPACE,
        "Ce-Endpoint": "default",
    }


async def send(url: str, rate: float, seconds: float) -> Sent:
    """Pairs at ``rate`` events per second on a fixed schedule, from ``SENDERS`` concurrent senders.

    Each sender takes the next pair and waits for its scheduled time (a late pair goes at once),
    so the client never piles up more requests than it has connections.
    """
    import aiohttp

    rng = np.random.default_rng(0)
    pairs = int(rate * seconds / 2)
    interval = 2 / rate
    sent = Sent(ids=[], completed_at=[], answer_seconds=[])
    numbers = iter(range(pairs))
    start = time.perf_counter()

    async def post(session: aiohttp.ClientSession, request_id: str, kind: str, body: bytes) -> bool:
        async with session.post(url, headers=headers(request_id, kind), data=body) as answer:
            await answer.read()
            return answer.status == 202

    async def sender(session: aiohttp.ClientSession) -> None:
        for number in numbers:
            delay = start + number * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            request_id = f"lat-{number}-{uuid.uuid4().hex[:8]}"
            row = rng.standard_normal(FEATURES).round(4).tolist()
            began = time.perf_counter()
            first = await post(session, request_id, "request", orjson.dumps({"instances": [row]}))
            completed = time.time()
            middle = time.perf_counter()
            second = await post(
                session, request_id, "response", orjson.dumps({"predictions": [int(row[0] > 0)]})
            )
            if not (first and second):
                sent.refused += 1
                continue
            sent.ids.append(request_id)
            sent.completed_at.append(completed)
            sent.answer_seconds.extend([middle - began, time.perf_counter() - middle])

    connector = aiohttp.TCPConnector(limit=SENDERS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return sent


def count_records(metrics_url: str) -> float:
    with contextlib.suppress(httpx.HTTPError):
        return sum(float(value) for value in RECORDS.findall(httpx.get(metrics_url, timeout=2).text))
    return 0.0


async def watch_metric(metrics_url: str, stop: asyncio.Event) -> list[tuple[float, float]]:
    """(time, records counted) every 50 ms until ``stop`` is set."""
    seen: list[tuple[float, float]] = []
    while not stop.is_set():
        count = await asyncio.to_thread(count_records, metrics_url)
        seen.append((time.time(), count))
        await asyncio.sleep(METRIC_POLL_SECONDS)
    return seen


def metric_latencies(sent: Sent, seen: list[tuple[float, float]], before: float) -> list[float]:
    """For the n-th inference sent, the first time the counter passed n, minus its completion time."""
    order = np.argsort(sent.completed_at)
    latencies = []
    position = 0
    for rank, index in enumerate(order, start=1):
        while position < len(seen) and seen[position][1] - before < rank:
            position += 1
        if position == len(seen):
            break
        latencies.append(seen[position][0] - sent.completed_at[index])
    return latencies


def store_latencies(database: Path, sent: Sent) -> list[float]:
    with sqlite3.connect(database) as connection:
        stored = dict(connection.execute("select request_id, stored_at from inferences").fetchall())
    latencies = []
    for request_id, completed in zip(sent.ids, sent.completed_at, strict=True):
        if request_id in stored:
            stamp = datetime.fromisoformat(str(stored[request_id]).replace(" ", "T")).timestamp()
            latencies.append(stamp - completed)
    return latencies


@contextlib.contextmanager
def processes(bootstrap: str, folder: Path, ports: list[int]) -> Iterator[tuple[str, str, Path]]:
    """The ingest and a worker with KSDrift and IForest on one model and the SQLite store."""
    saved = save_detectors(folder, FEATURES)
    config = write_config(folder / "infersight.yaml", saved, [MODEL])
    database = folder / "store.db"
    topic = f"bench-latency-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "INFERSIGHT_CONFIG": str(config),
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "INFERSIGHT_KAFKA__TOPICS__PAYLOADS": topic,
        "INFERSIGHT_KAFKA__TOPICS__DETECTIONS": f"{topic}-detections",
        "INFERSIGHT_KAFKA__TOPICS__DEADLETTER": f"{topic}-deadletter",
        "INFERSIGHT_WORKER__GROUP_ID": f"{topic}-worker",
        "INFERSIGHT_WORKER__STATE_DIR": str(folder / "worker"),
        "INFERSIGHT_WORKER__METRICS_HOST": "127.0.0.1",
        "INFERSIGHT_WORKER__METRICS_PORT": str(ports[1]),
        "INFERSIGHT_DETECTIONS__STATE_URI": str(folder / "state"),
        "INFERSIGHT_STORE__URL": f"sqlite:///{database}",
    }
    logs = folder / "logs"
    logs.mkdir()
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, arguments in (
            ("worker", ["worker"]),
            ("ingest", ["ingest", "--host", "127.0.0.1", "--port", str(ports[0])]),
        ):
            with (logs / f"{name}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "infersight", *arguments], env=env, stdout=log, stderr=log
                    )
                )
        url = f"http://127.0.0.1:{ports[0]}/"
        metrics = f"http://127.0.0.1:{ports[1]}/metrics"
        deadline = time.monotonic() + 120
        while not (_answers(f"{url}readyz") and _answers(metrics)):
            if time.monotonic() > deadline or any(process.poll() is not None for process in started):
                raise SystemExit(f"the ingest or the worker did not start; logs in {logs}")
            time.sleep(0.5)
        yield url, metrics, database
    finally:
        for process in reversed(started):
            stop(process, timeout=30)


def _answers(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=2).status_code == 200
    return False


async def wait_for_count(metrics_url: str, target: float, timeout_s: float) -> None:
    """Until the worker has counted ``target`` records, or ``timeout_s`` passed."""
    for _ in range(int(timeout_s / 0.2)):
        if count_records(metrics_url) >= target:
            return
        await asyncio.sleep(0.2)


async def measure(
    url: str, metrics: str, rate: float, seconds: float
) -> tuple[Sent, list[tuple[float, float]], float]:
    # A few pairs first, so that the worker has joined its group and loaded its detectors.
    warm = await send(url, 20, 1)
    await wait_for_count(metrics, len(warm.ids), 120)
    before = count_records(metrics)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_metric(metrics, stop))
    sent = await send(url, rate, seconds)
    await wait_for_count(metrics, before + len(sent.ids), DRAIN_SECONDS)
    stop.set()
    return sent, await watcher, before


def report(sent: Sent, to_metric: list[float], to_store: list[float], rate: float) -> dict[str, Any]:
    answer = percentiles(sent.answer_seconds)
    metric = percentiles(to_metric) if to_metric else (float("nan"), float("nan"))
    store = percentiles(to_store) if to_store else (float("nan"), float("nan"))
    table = Table(title=f"end-to-end latency at {rate:,.0f} events/s (KSDrift + IForest, SQLite store)")
    for column in ("path", "inferences", "p50", "p99"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row(
        "POST → 202 (baseline: ingest + Kafka ack)", f"{len(sent.ids):,}", _ms(answer[0]), _ms(answer[1])
    )
    table.add_row("POST → counted in /metrics", f"{len(to_metric):,}", _ms(metric[0]), _ms(metric[1]))
    table.add_row("POST → row in the store", f"{len(to_store):,}", _ms(store[0]), _ms(store[1]))
    console.print(table)
    lost = len(sent.ids) - len(to_store)
    console.print(f"refused: {sent.refused}; acknowledged but not stored: {lost}")
    return {
        "rate_events_per_s": rate,
        "inferences": len(sent.ids),
        "refused": sent.refused,
        "not_stored": lost,
        "answer_p50_s": answer[0],
        "answer_p99_s": answer[1],
        "metric_p50_s": metric[0],
        "metric_p99_s": metric[1],
        "store_p50_s": store[0],
        "store_p99_s": store[1],
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second (two per inference)")
    parser.add_argument("--seconds", type=float, default=30.0)
    add_common_arguments(parser, DEFAULT_JSON, "the ingest, the worker's metrics and a local broker")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    low, high = port_range(args.ports)
    with tempfile.TemporaryDirectory(prefix="infersight-bench-latency-") as temp:
        folder = Path(temp)
        ports = free_ports(4, low, high)
        with (
            kafka_broker(args.bootstrap, folder / "kafka", ports[2:]) as bootstrap,
            processes(bootstrap, folder, ports[:2]) as (url, metrics, database),
        ):
            sent, seen, before = asyncio.run(measure(url, metrics, args.rate, args.seconds))
            time.sleep(2)  # the last batch's rows
            figures = report(
                sent, metric_latencies(sent, seen, before), store_latencies(database, sent), args.rate
            )
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
