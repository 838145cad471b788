"""``infersight up`` as a user runs it: quiet, ready before it says so, counts, and a clean stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.helpers import free_port, kafka_environment, stop, wait_until
from tests.test_ingest import kserve_headers


class Lines:
    """A process's output, read as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, process: subprocess.Popen[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if process.poll() is not None:
                self._thread.join(timeout=5)
                if any(text in line for line in self.lines):
                    return
                raise AssertionError(f"up exited with {process.returncode}:\n" + "\n".join(self.lines))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout} s:\n" + "\n".join(self.lines))
            time.sleep(0.1)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def scrape_health(port: int) -> dict[str, str]:
    """Each scrape job's health, as Prometheus on ``port`` reports it."""
    try:
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=5).json()["data"][
            "activeTargets"
        ]
    except httpx.HTTPError:
        return {}
    return {target["labels"]["job"]: target["health"] for target in targets}


def start_up(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "infersight", "up", *args],
        env={**env, "COLUMNS": "80"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    return process, Lines(process)


def test_up_is_quiet_answers_before_its_table_counts_and_stops_cleanly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    assert shutil.which("prometheus"), "this test runs up with Prometheus: apt install prometheus"
    topic = f"up-{uuid.uuid4().hex[:8]}"
    ingest, metrics, api, prometheus = free_port(), free_port(), free_port(), free_port()
    env = kafka_environment(
        kafka_bootstrap,
        topic,
        INFERSIGHT_WORKER__STATE_DIR=str(tmp_path / "state"),
        INFERSIGHT_DETECTIONS__STATE_URI=str(tmp_path / "detector-state"),
        INFERSIGHT_STORE__URL=f"sqlite:///{tmp_path / 'up.db'}",
        INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
    )
    process, output = start_up(
        tmp_path,
        env,
        *("--ingest-port", str(ingest), "--metrics-port", str(metrics), "--api-port", str(api)),
        *("--log", str(tmp_path / "up.log"), "--prometheus-port", str(prometheus)),
    )
    try:
        output.wait_for("infersight is up", process)
        # Each part answered before the table was printed.
        for url in (
            f"http://localhost:{ingest}/readyz",
            f"http://localhost:{metrics}/readyz",
            f"http://localhost:{api}/healthz",
        ):
            assert httpx.get(url, timeout=5).status_code == 200, url
        assert f"http://localhost:{api}/ui/" in output.text
        before_table = output.text.split("infersight is up")[0]
        ready = ("ingest", "worker", "api", "prometheus")
        assert all(f"{name:>10} │ ready" in before_table for name in ready), output.text
        # Prometheus scrapes the parts under the jobs the dashboards use; Grafana's provisioning is
        # written beside it, pointing at that folder.
        wait_until(
            lambda: (
                scrape_health(prometheus)
                == {"infersight-ingest": "up", "infersight-worker": "up", "infersight-api": "up"}
            ),
            60,
            "Prometheus scraping the ingest, the worker and the query API",
        )
        assert "GF_PATHS_PROVISIONING=" in output.text
        # Quiet: the parts' own lines (uvicorn, the engine) went to the log, not here.
        assert "Uvicorn running" not in output.text and "Uvicorn running" in (tmp_path / "up.log").read_text()
        assert len(output.lines) < 40, output.text
        request_id = uuid.uuid4().hex
        for kind, body in (
            ("request", b'{"instances": [[1.0, 2.0]]}'),
            ("response", b'{"predictions": [1]}'),
        ):
            answer = httpx.post(
                f"http://localhost:{ingest}/", headers=kserve_headers(request_id, kind), content=body
            )
            assert answer.status_code == 202, answer.text
        output.wait_for("events in 2 · records 1", process, timeout=60)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, output.text
        output.wait_for("stopped", process)
        for port in (ingest, metrics, api):
            try:
                httpx.get(f"http://localhost:{port}/healthz", timeout=1)
                raise AssertionError(f"port {port} still answers after up stopped")
            except httpx.HTTPError:
                pass
    finally:
        if process.poll() is None:
            stop(process)  # type: ignore[arg-type]


def test_up_names_a_part_that_fails_in_one_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A busy port: the ingest exits, and up says so in one line with the ingest's reason."""
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    env = kafka_environment(
        kafka_bootstrap,
        f"up-{uuid.uuid4().hex[:8]}",
        INFERSIGHT_WORKER__STATE_DIR=str(tmp_path / "state"),
        INFERSIGHT_STORE__URL=f"sqlite:///{tmp_path / 'up.db'}",
    )
    try:
        process, output = start_up(
            tmp_path,
            env,
            *("--ingest-port", str(port), "--metrics-port", str(free_port()), "--api-port", str(free_port())),
            *("--log", str(tmp_path / "up.log"), "--no-prometheus"),
        )
        assert process.wait(timeout=180) == 1
    finally:
        busy.close()
    output.wait_for("error:", process)
    errors = [line for line in output.lines if line.startswith("error:")]
    assert len(errors) == 1 and "ingest exited with status" in errors[0], output.text
    assert "Traceback" not in output.text


def test_up_never_starts_or_stops_a_broker_it_was_not_asked_for(tmp_path: Path) -> None:
    """Kafka named at a loopback port where nothing listens: a clear error, and no broker touched."""
    nothing = free_port()
    env = {
        **os.environ,
        "INFERSIGHT_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{nothing}",
        "INFERSIGHT_LOCAL_KAFKA__PORT": str(free_port()),
        "INFERSIGHT_LOCAL_KAFKA__STATE_DIR": str(tmp_path / "kafka"),
    }
    process, output = start_up(tmp_path, env)
    assert process.wait(timeout=60) == 1
    output.wait_for("error:", process)
    assert f"no Kafka answers at 127.0.0.1:{nothing}" in output.text and "Traceback" not in output.text
    assert not (tmp_path / "kafka").exists()  # the local broker was never started
