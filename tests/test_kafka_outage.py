"""The broker stops while traffic flows: 503s, nothing acknowledged is lost, 202s resume.

This test runs its own broker through the CLI (``infersight kafka start|stop|status``), so
stopping it does not disturb the rest of the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, read_topic, run_ingest
from tests.test_ingest import KSERVE_V1_REQUEST, kserve_headers

pytestmark = pytest.mark.slow


def kafka_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infersight", "kafka", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


class Traffic:
    """Four senders posting KServe events until told to stop; every answer is remembered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, int] = {}
        self.retry_after: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send) for _ in range(4)]

    def _send(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                event_id = str(uuid.uuid4())
                try:
                    answer = client.post(
                        self.url, headers=kserve_headers(event_id, "request"), content=KSERVE_V1_REQUEST
                    )
                except httpx.HTTPError:
                    continue
                with self._lock:
                    self.answers[event_id] = answer.status_code
                    if answer.status_code == 503:
                        self.retry_after.add(answer.headers.get("retry-after", ""))
                time.sleep(0.01)

    def count(self) -> Counter[int]:
        with self._lock:
            return Counter(self.answers.values())

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


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
        with (
            run_ingest(bootstrap, topic, tmp_path, INFERSIGHT_INGEST__KAFKA_TIMEOUT_SECONDS="3") as ingest,
            Traffic(ingest.url) as traffic,
        ):
            wait_for(lambda: traffic.count()[202] >= 100, 60, "traffic before the outage")
            stopped = kafka_cli(env, "stop")
            assert stopped.returncode == 0 and "stopped" in stopped.stdout
            assert kafka_cli(env, "status").returncode == 3
            wait_for(lambda: traffic.count()[503] >= 8, 60, "503s while Kafka is down")
            assert httpx.get(f"{ingest.url}/readyz", timeout=10).status_code == 503
            accepted_during_outage = traffic.count()[202]

            assert kafka_cli(env, "start").returncode == 0
            wait_for(
                lambda: traffic.count()[202] >= accepted_during_outage + 100, 120, "202s after the restart"
            )
            assert httpx.get(f"{ingest.url}/readyz", timeout=10).status_code == 200

        answers = dict(traffic.answers)
        assert set(answers.values()) <= {202, 503}
        assert traffic.retry_after == {"5"}
        stored = {dict(record.headers)["ce_id"].decode() for record in read_topic(bootstrap, topic)}  # type: ignore[attr-defined]
        acknowledged = {event_id for event_id, status in answers.items() if status == 202}
        assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events are missing"
        print(f"outage: sent {len(answers)}, acknowledged {len(acknowledged)}, in Kafka {len(stored)}")
    finally:
        kafka_cli(env, "stop")
