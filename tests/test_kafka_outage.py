"""The broker stops while traffic flows: 503s, nothing acknowledged is lost, 202s resume, all is stored.

This test runs its own broker through the CLI (``infersight kafka start|stop|status``), so
stopping it does not disturb the rest of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    count_stored,
    free_port,
    read_topic,
    report_fault,
    run_ingest,
    run_worker,
    wait_stored,
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


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_broker_outage_loses_nothing_acknowledged(tmp_path: Path) -> None:
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
        topic = f"test.outage.{uuid.uuid4().hex[:8]}"
        store = tmp_path / "store.db"
        with (
            run_ingest(bootstrap, topic, tmp_path, INFERSIGHT_INGEST__KAFKA_TIMEOUT_SECONDS="3") as ingest,
            run_worker(
                bootstrap,
                topic,
                tmp_path,
                INFERSIGHT_STORE__URL=f"sqlite:///{store}",
                INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS="1",
                INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
            ),
        ):
            with Traffic(ingest.url) as traffic:
                wait_for(lambda: traffic.count()[202] >= 100, 60, "traffic before the outage")
                stopped = kafka_cli(env, "stop")
                assert stopped.returncode == 0 and "stopped" in stopped.stdout
                assert kafka_cli(env, "status").returncode == 3
                wait_for(lambda: traffic.count()[503] >= 8, 60, "503s while Kafka is down")
                assert httpx.get(f"{ingest.url}/readyz", timeout=10).status_code == 503
                accepted_during_outage = traffic.count()[202]

                assert kafka_cli(env, "start").returncode == 0
                wait_for(
                    lambda: traffic.count()[202] >= accepted_during_outage + 100,
                    120,
                    "202s after the restart",
                )
                assert httpx.get(f"{ingest.url}/readyz", timeout=10).status_code == 200

            assert set(traffic.count()) <= {202, 503}
            assert traffic.retry_after == {"5"}
            in_kafka = {dict(record.headers)["ce_id"].decode() for record in read_topic(bootstrap, topic)}  # type: ignore[attr-defined]
            acknowledged = traffic.acknowledged()
            assert acknowledged <= in_kafka, f"{len(acknowledged - in_kafka)} acknowledged events are missing"
            # The worker rode out the outage too: everything acknowledged reaches the store.
            stored = wait_stored(f"sqlite:///{store}", acknowledged, timeout=180)
        whole, lost, duplicated = count_stored(acknowledged, stored, halves=1)
        report_fault(
            "broker outage",
            len(traffic.answers),
            len(acknowledged),
            whole,
            lost,
            duplicated,
            in_kafka=len(in_kafka),
        )
    finally:
        kafka_cli(env, "stop")
