"""What a user sees when a part cannot start: one line saying why, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, kafka_environment


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "infersight", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def one_error(status: int, lines: list[str], expected: str) -> None:
    errors = [line for line in lines if line.startswith("error:")]
    assert status == 1, lines
    assert len(errors) == 1 and expected in errors[0], lines
    assert not any("Traceback" in line for line in lines), lines


def worker_env(kafka_bootstrap: str, tmp_path: Path, **env: str) -> dict[str, str]:
    defaults = {
        "INFERSIGHT_WORKER__STATE_DIR": str(tmp_path / "state"),
        "INFERSIGHT_STORE__URL": f"sqlite:///{tmp_path / 'store.db'}",
        "INFERSIGHT_WORKER__METRICS_PORT": str(free_port()),
    }
    return kafka_environment(kafka_bootstrap, f"errors-{uuid.uuid4().hex[:8]}", **{**defaults, **env})


def test_worker_with_an_unreachable_postgresql(kafka_bootstrap: str, tmp_path: Path) -> None:
    nothing = free_port()
    env = worker_env(
        kafka_bootstrap, tmp_path, INFERSIGHT_STORE__URL=f"postgresql://u:p@127.0.0.1:{nothing}/db"
    )
    one_error(*run(env, "worker"), "database error: connection failed")


def test_worker_with_a_busy_metrics_port(kafka_bootstrap: str, tmp_path: Path, busy_port: int) -> None:
    env = worker_env(kafka_bootstrap, tmp_path, INFERSIGHT_WORKER__METRICS_PORT=str(busy_port))
    one_error(*run(env, "worker"), f"cannot serve /metrics on 127.0.0.1:{busy_port} (worker.metrics_port)")


def test_worker_with_a_state_dir_that_cannot_be_made(kafka_bootstrap: str, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    env = worker_env(kafka_bootstrap, tmp_path, INFERSIGHT_WORKER__STATE_DIR=str(a_file / "state"))
    one_error(*run(env, "worker"), f"worker.state_dir {a_file / 'state'}: Not a directory")


def test_api_and_ingest_on_a_busy_port(kafka_bootstrap: str, tmp_path: Path, busy_port: int) -> None:
    env = worker_env(kafka_bootstrap, tmp_path)
    expected = f"cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    one_error(*run(env, "api", "--port", str(busy_port)), expected)
    one_error(*run(env, "ingest", "--port", str(busy_port)), expected)
