"""A real Prometheus for the tests: the apt package's binary on a free port, and its HTTP API."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.helpers import free_port, stop, wait_ready


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("no prometheus binary (apt install prometheus)")
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        raise RuntimeError("no promtool binary (apt install prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=60)


@contextlib.contextmanager
def run_prometheus(config: dict[str, Any], folder: Path) -> Iterator[str]:
    """Prometheus with ``config`` in its own process; yields its base URL once ``/-/ready`` answers."""
    folder.mkdir(parents=True, exist_ok=True)
    config_file = folder / "prometheus.yaml"
    config_file.write_text(yaml.safe_dump(config))
    check = promtool("check", "config", str(config_file))
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, f"{url}/-/ready", "prometheus", log)
        yield url
    finally:
        stop(process)


def instant(url: str, expr: str) -> list[dict[str, Any]]:
    """The series ``expr`` evaluates to now; a query Prometheus refuses fails the test with its error."""
    answer = httpx.post(f"{url}/api/v1/query", data={"query": expr}, timeout=30).json()
    assert answer["status"] == "success", f"{expr}: {answer.get('error')}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def label_values(url: str, label: str, match: str) -> list[str]:
    answer = httpx.get(f"{url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=30).json()
    assert answer["status"] == "success", f"{label} of {match}: {answer.get('error')}"
    values: list[str] = answer["data"]
    return values


def alerts(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/alerts", timeout=30).json()
    assert answer["status"] == "success"
    found: list[dict[str, Any]] = answer["data"]["alerts"]
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's template variables replaced as Grafana would for one selection (``$name`` or ``${name}``)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)
