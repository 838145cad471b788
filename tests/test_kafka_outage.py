"""The broker stops while traffic flows: the ingest spools, answers 202 throughout, and loses nothing.

This test runs its own broker through the CLI (``infersight kafka start|stop|status``), so
stopping it does not disturb the rest of the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    Worker,
    count_stored,
    free_port,
    read_topic,
    report_fault,
    run_ingest,
    run_worker,
    wait_ready,
    wait_stored,
    wait_until,
)
from tests.traffic import Traffic

pytestmark = pytest.mark.slow


def kafka_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infersight", "kafka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


#: How long the broker stays away, and the senders' pace: 5 senders, at most 100 events/s each.
OUTAGE_SECONDS = 30.0
SENDERS, PAUSE = 5, 0.01
#: How long the broker hangs: several times the ingest's deadline.
HANG_SECONDS = 8.0


@contextlib.contextmanager
def own_broker(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A broker of this test's, run through the CLI, stopped at the end whatever happened."""
    port = free_port()
    env = {
        **os.environ,
        "INFERSIGHT_LOCAL_KAFKA__STATE_DIR": str(tmp_path / "kafka"),
        "INFERSIGHT_LOCAL_KAFKA__PORT": str(port),
        "INFERSIGHT_LOCAL_KAFKA__CONTROLLER_PORT": str(free_port()),
    }
    bootstrap = f"localhost:{port}"
    assert kafka_cli(env, "status").returncode == 3
    started = kafka_cli(env, "start")
    assert started.returncode == 0, started.stderr
    assert f"running on {bootstrap}" in started.stdout
    try:
        again = kafka_cli(env, "start")  # idempotent
        assert again.returncode == 0 and "running" in again.stdout
        yield env, bootstrap
    finally:
        kafka_cli(env, "stop")


def storing_worker(
    bootstrap: str, topic: str, tmp_path: Path, store: Path
) -> contextlib.AbstractContextManager[Worker]:
    """A worker storing to ``store``, pairing and writing in short batches; started, not yet ready."""
    return run_worker(
        bootstrap,
        topic,
        tmp_path,
        INFERSIGHT_STORE__URL=f"sqlite:///{store}",
        INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS="1",
        INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
    )


@contextlib.contextmanager
def ready_worker(bootstrap: str, topic: str, tmp_path: Path, store: Path) -> Iterator[Worker]:
    """A worker storing to ``store``, running (not starting) before the outage finds it."""
    with storing_worker(bootstrap, topic, tmp_path, store) as worker:
        wait_ready(worker.process, worker.metrics_url.replace("/metrics", "/readyz"), "worker", worker.log)
        yield worker


def spool_figures(url: str) -> dict[str, float]:
    """The ingest's spool metrics, by name."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("infersight_ingest_spool")
    }


def check_outage_outcome(
    scenario: str, bootstrap: str, topic: str, store: Path, traffic: Traffic, *, ingest_died: bool
) -> None:
    """Every event answered 202; every one in Kafka and stored once.

    When the ingest was killed, the posts it never answered (0: refused, or cut off) are the
    senders' loss, not the ingest's: nothing it acknowledged may be missing.
    """
    statuses = traffic.count()
    assert set(statuses) <= ({202, 0} if ingest_died else {202}), statuses
    in_kafka = {dict(record.headers)["ce_id"].decode() for record in read_topic(bootstrap, topic)}  # type: ignore[attr-defined]
    acknowledged = traffic.acknowledged()
    assert acknowledged <= in_kafka, f"{len(acknowledged - in_kafka)} acknowledged events are missing"
    stored = wait_stored(f"sqlite:///{store}", acknowledged, timeout=180)
    whole, lost, duplicated = count_stored(acknowledged, stored, halves=1)
    report_fault(
        scenario, len(traffic.answers), len(acknowledged), whole, lost, duplicated, in_kafka=len(in_kafka)
    )
    assert lost == 0 and duplicated == 0


def test_broker_outage_every_event_is_spooled_acknowledged_and_stored(tmp_path: Path) -> None:
    """30 s without a broker under ~500 events/s from senders that never retry: every one 202, none lost."""
    with own_broker(tmp_path) as (env, bootstrap):
        topic = f"test.outage.{uuid.uuid4().hex[:8]}"
        store = tmp_path / "store.db"
        with (
            run_ingest(bootstrap, topic, tmp_path) as ingest,
            ready_worker(bootstrap, topic, tmp_path, store),
        ):
            with Traffic(ingest.url, senders=SENDERS, pause=PAUSE) as traffic:
                wait_until(lambda: traffic.count()[202] >= 200, 60, "traffic before the outage")
                wait_stored(f"sqlite:///{store}", set(sorted(traffic.acknowledged())[:100]), timeout=60)
                stopped = kafka_cli(env, "stop")
                assert stopped.returncode == 0 and "stopped" in stopped.stdout
                down_at = time.monotonic()
                wait_until(
                    lambda: spool_figures(ingest.url)["infersight_ingest_spool_events"] > 0, 30, "spooling"
                )
                ready = httpx.get(f"{ingest.url}/readyz", timeout=10)
                assert ready.status_code == 200 and ready.json()["status"] == "degraded"
                wait_until(lambda: time.monotonic() >= down_at + OUTAGE_SECONDS, 60, "the outage's end")
                spooled = spool_figures(ingest.url)
                assert spooled["infersight_ingest_spool_events"] >= 1000, spooled
                assert spooled["infersight_ingest_spool_oldest_age_seconds"] > 1, spooled

                assert kafka_cli(env, "start").returncode == 0
                wait_until(
                    lambda: spool_figures(ingest.url)["infersight_ingest_spool_events"] == 0, 120, "the drain"
                )
                drained = spool_figures(ingest.url)["infersight_ingest_spool_drained_total"]
                assert drained >= spooled["infersight_ingest_spool_events"]
                assert httpx.get(f"{ingest.url}/readyz", timeout=10).json()["status"] == "ready"
                more = traffic.count()[202] + 100
                wait_until(lambda: traffic.count()[202] >= more, 60, "traffic after the drain")
            check_outage_outcome("broker outage", bootstrap, topic, store, traffic, ingest_died=False)


def test_an_ingest_killed_while_it_spools_drains_its_spool_when_started_again(tmp_path: Path) -> None:
    """SIGKILL in mid-outage: what was answered 202 is on disk, and the next ingest sends it on."""
    with own_broker(tmp_path) as (env, bootstrap):
        topic = f"test.outage.{uuid.uuid4().hex[:8]}"
        store = tmp_path / "store.db"
        spool = tmp_path / "spool"
        port = free_port()
        with ready_worker(bootstrap, topic, tmp_path, store):
            first = run_ingest(
                bootstrap, topic, tmp_path, port=port, INFERSIGHT_INGEST__SPOOL__PATH=str(spool)
            )
            ingest = first.__enter__()
            try:
                with Traffic(ingest.url, senders=SENDERS, pause=PAUSE) as traffic:
                    wait_until(lambda: traffic.count()[202] >= 200, 60, "traffic before the outage")
                    wait_stored(f"sqlite:///{store}", set(sorted(traffic.acknowledged())[:100]), timeout=60)
                    assert kafka_cli(env, "stop").returncode == 0
                    wait_until(
                        lambda: spool_figures(ingest.url)["infersight_ingest_spool_events"] >= 1000,
                        60,
                        "1,000 events spooled",
                    )
                    os.kill(ingest.pid, signal.SIGKILL)
                    first.__exit__(None, None, None)
                    with run_ingest(
                        bootstrap,
                        topic,
                        tmp_path,
                        port=port,
                        kafka_ready=False,  # Kafka is away: it serves from its spool
                        INFERSIGHT_INGEST__SPOOL__PATH=str(spool),
                    ) as again:
                        figures = spool_figures(again.url)
                        assert figures["infersight_ingest_spool_events"] >= 1000, figures  # the dead one's
                        more = traffic.count()[202] + 500
                        wait_until(lambda: traffic.count()[202] >= more, 60, "202s from the new ingest")
                        assert kafka_cli(env, "start").returncode == 0
                        wait_until(
                            lambda: spool_figures(again.url)["infersight_ingest_spool_events"] == 0,
                            120,
                            "the drain of both spool files",
                        )
                        more = traffic.count()[202] + 100
                        wait_until(lambda: traffic.count()[202] >= more, 60, "traffic after the drain")
            finally:
                first.__exit__(None, None, None)
            assert [path.name for path in spool.glob("*.spool")] == [], "the orphan was drained and removed"
            check_outage_outcome(
                "ingest killed while spooling", bootstrap, topic, store, traffic, ingest_died=True
            )


def test_a_hung_broker_is_noticed_by_the_deadline_and_its_events_spooled(tmp_path: Path) -> None:
    """SIGSTOP: the broker keeps its connections open and answers nothing, so no client error comes;
    each request still gets its 202 from the spool once its wait for Kafka passes the deadline."""
    timeout = 1.0
    with own_broker(tmp_path) as (env, bootstrap):
        broker = int((Path(env["INFERSIGHT_LOCAL_KAFKA__STATE_DIR"]) / "kafka.pid").read_text())
        topic = f"test.hung.{uuid.uuid4().hex[:8]}"
        store = tmp_path / "store.db"
        with (
            run_ingest(
                bootstrap, topic, tmp_path, INFERSIGHT_INGEST__KAFKA_TIMEOUT_SECONDS=str(timeout)
            ) as ingest,
            ready_worker(bootstrap, topic, tmp_path, store),
        ):
            with Traffic(ingest.url, senders=SENDERS, pause=PAUSE) as traffic:
                wait_until(lambda: traffic.count()[202] >= 200, 60, "traffic before the broker hangs")
                # The worker must hold its partitions first: this tests the ingest's deadline.
                wait_stored(f"sqlite:///{store}", set(sorted(traffic.acknowledged())[:100]), timeout=60)
                os.kill(broker, signal.SIGSTOP)
                hung_at = time.monotonic()
                try:
                    wait_until(
                        lambda: (
                            spool_figures(ingest.url)["infersight_ingest_spool_events"] >= 300
                            and time.monotonic() > hung_at + HANG_SECONDS
                        ),
                        60,
                        f"{HANG_SECONDS:.0f} s of a hung broker and 300 events spooled",
                    )
                finally:
                    os.kill(broker, signal.SIGCONT)
                wait_until(
                    lambda: spool_figures(ingest.url)["infersight_ingest_spool_events"] == 0, 120, "the drain"
                )
                more = traffic.count()[202] + 100
                wait_until(lambda: traffic.count()[202] >= more, 60, "traffic after the drain")
            # Without the deadline a request would wait for librdkafka's socket timeout (60 s).
            assert traffic.slowest < timeout + 5, traffic.slowest
            check_outage_outcome("hung broker", bootstrap, topic, store, traffic, ingest_died=False)


def test_a_broker_that_hangs_while_a_worker_joins_its_group_holds_nothing_back(tmp_path: Path) -> None:
    """The broker freezes just as a worker starts (topics checked, the group being joined): once it
    answers again, the worker takes its partitions and stores every acknowledged inference once."""
    with own_broker(tmp_path) as (env, bootstrap):
        broker = int((Path(env["INFERSIGHT_LOCAL_KAFKA__STATE_DIR"]) / "kafka.pid").read_text())
        topic = f"test.hungjoin.{uuid.uuid4().hex[:8]}"
        store = tmp_path / "store.db"
        with (
            run_ingest(bootstrap, topic, tmp_path, INFERSIGHT_INGEST__KAFKA_TIMEOUT_SECONDS="1") as ingest,
            contextlib.ExitStack() as workers,  # the worker outlives the traffic, to store its tail
        ):
            with Traffic(ingest.url, senders=SENDERS, pause=PAUSE) as traffic:
                wait_until(lambda: traffic.count()[202] >= 200, 60, "traffic before the worker starts")
                worker = workers.enter_context(storing_worker(bootstrap, topic, tmp_path, store))
                wait_until(lambda: "consuming" in worker.log.read_text(), 120, "the worker to start")
                os.kill(broker, signal.SIGSTOP)
                hung_at = time.monotonic()
                try:
                    wait_until(lambda: time.monotonic() > hung_at + HANG_SECONDS, 60, "the hang")
                finally:
                    os.kill(broker, signal.SIGCONT)
                readyz = worker.metrics_url.replace("/metrics", "/readyz")
                wait_ready(worker.process, readyz, "worker", worker.log, timeout=120)
                wait_until(  # what the ingest spooled while the broker hung is in Kafka only then
                    lambda: spool_figures(ingest.url)["infersight_ingest_spool_events"] == 0, 120, "the drain"
                )
                more = traffic.count()[202] + 100
                wait_until(lambda: traffic.count()[202] >= more, 60, "traffic after the hang")
            check_outage_outcome("hung broker at join", bootstrap, topic, store, traffic, ingest_died=False)
            log = worker.log.read_text()
            assert worker.process.poll() is None, log
            assert f"partitions of {topic} now held: [0, 1, 2]" in log, log
