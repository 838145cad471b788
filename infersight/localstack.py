"""The whole local stack as child processes: ingest, worker and query API, with a local Kafka.

Each part runs as its own ``infersight`` process in its own session, so that Ctrl-C reaches only
the supervisor, which then stops the parts in order (the ingest first, so nothing new arrives;
the worker next, so it commits what it handled; the broker last, and only if it started it).
Their output is streamed line by line with a prefix naming the part.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infersight.config import Settings
from infersight.kafkaclient import librdkafka_config
from infersight.localkafka import LocalKafka, LocalKafkaError
from infersight.localkafka.runner import broker_answers

STOP_TIMEOUT_SECONDS = 30.0

LineSink = Callable[[str, str], None]


class PartOutput:
    """Where the parts' lines go: a log file, and ``echo`` too when given; each part's last lines kept."""

    def __init__(self, log: Path, echo: LineSink | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.echo = echo
        self._file = log.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self.last: dict[str, collections.deque[str]] = collections.defaultdict(
            lambda: collections.deque(maxlen=20)
        )

    def __call__(self, name: str, line: str) -> None:
        with self._lock:
            self._file.write(f"{name:>10} | {line}\n")
            self._file.flush()
            if line.strip():
                self.last[name].append(line.strip())
        if self.echo is not None:
            self.echo(name, line)

    def last_line(self, name: str) -> str:
        lines = self.last.get(name)
        return lines[-1] if lines else "(no output)"

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class Part:
    """One process of the stack: its name, its command line, what it serves and where it says ready."""

    name: str
    arguments: tuple[str, ...]
    listens: str
    ready_url: str
    #: A program other than infersight (Prometheus), run with ``arguments``.
    program: str | None = None


def parts(settings: Settings, host: str) -> list[Part]:
    """The processes ``infersight up`` runs, in start order."""
    ingest = settings.ingest
    worker = settings.worker
    api = settings.api
    return [
        Part(
            "worker",
            ("worker",),
            f"metrics http://{host}:{worker.metrics_port}/metrics",
            f"http://{host}:{worker.metrics_port}/readyz",
        ),
        Part(
            "ingest",
            ("ingest",),
            f"CloudEvents http://{host}:{ingest.port}/  metrics http://{host}:{ingest.port}/metrics",
            f"http://{host}:{ingest.port}/readyz",
        ),
        Part(
            "api",
            ("api",),
            f"web UI http://{host}:{api.port}/ui/  query API http://{host}:{api.port}/v1/models"
            f"  docs http://{host}:{api.port}/docs",
            f"http://{host}:{api.port}/healthz",
        ),
    ]


def prometheus_part(settings: Settings, host: str, binary: str, folder: Path, port: int, api: bool) -> Part:
    """Prometheus scraping the ingest and the worker, its configuration and data under ``folder``.

    Beside it, ``folder/grafana`` holds the dashboards and a provisioning that points at them and
    at this Prometheus, for a Grafana run on the same machine.
    """
    from infersight.monitoring.output import write_local_monitoring

    url = f"http://{host}:{port}"
    config = write_local_monitoring(
        folder,
        f"{host}:{settings.ingest.port}",
        f"{host}:{settings.worker.metrics_port}",
        f"{host}:{settings.api.port}" if api else None,
        url,
    )
    arguments = (
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    )
    grafana = folder.resolve() / "grafana" / "provisioning"
    listens = f"{url}/  Grafana: GF_PATHS_PROVISIONING={grafana}"
    return Part("prometheus", arguments, listens, f"{url}/-/ready", program=binary)


def _same_address(first: str, second: str) -> bool:
    """Whether two ``host:port`` name the same local listener (localhost, 127.0.0.1 and ::1 alike)."""
    local = {"localhost", "127.0.0.1", "::1", "[::1]"}
    (host_a, _, port_a), (host_b, _, port_b) = first.rpartition(":"), second.rpartition(":")
    return port_a == port_b and (host_a == host_b or (host_a in local and host_b in local))


@dataclass
class Running:
    part: Part
    process: subprocess.Popen[bytes]
    reader: threading.Thread


@dataclass
class Stack:
    """Starts the parts, streams their output and stops them; a context manager."""

    settings: Settings
    config_path: Path | None
    sink: LineSink
    host: str = "localhost"
    #: Settings for the parts as INFERSIGHT_... variables (``up``'s port options).
    environment: dict[str, str] = field(default_factory=dict)
    started_kafka: LocalKafka | None = None
    running: list[Running] = field(default_factory=list)

    def kafka_needed(self) -> LocalKafka | None:
        """The local broker to start, or None when one already answers at the bootstrap servers.

        Raises LocalKafkaError when none answers there and the local broker would listen elsewhere:
        starting it would not help, and stopping it later could stop a broker others use.
        """
        kafka = self.settings.kafka
        options = librdkafka_config(kafka)
        if broker_answers(kafka.bootstrap_servers, timeout_seconds=2.0, client_options=options):
            return None
        local = LocalKafka(self.settings.local_kafka)
        if not any(
            _same_address(server.strip(), local.bootstrap_servers)
            for server in kafka.bootstrap_servers.split(",")
        ):
            raise LocalKafkaError(
                f"no Kafka answers at {kafka.bootstrap_servers} (kafka.bootstrap_servers); the local broker "
                f"listens at {local.bootstrap_servers} (local_kafka.port): start the broker you named, or "
                "point kafka.bootstrap_servers at the local one"
            )
        return local

    def start_kafka(self, kafka: LocalKafka) -> None:
        """Start the local broker; it is stopped with the stack only if it was not running before."""
        was_running = kafka.status().running
        kafka.start()
        if not was_running:
            self.started_kafka = kafka

    def _command(self, part: Part) -> list[str]:
        if part.program is not None:
            return [part.program, *part.arguments]
        config = ["--config", str(self.config_path)] if self.config_path is not None else []
        return [sys.executable, "-m", "infersight", *config, *part.arguments]

    def start(self, chosen: Sequence[Part]) -> None:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **self.environment}
        for part in chosen:
            process = subprocess.Popen(
                self._command(part),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
            reader = threading.Thread(target=self._stream, args=(part.name, process), daemon=True)
            reader.start()
            self.running.append(Running(part, process, reader))

    def _stream(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self.sink(name, raw.decode(errors="replace").rstrip())

    def exited(self) -> Running | None:
        """A part that has stopped on its own, if any."""
        return next((running for running in self.running if running.process.poll() is not None), None)

    def wait_ready(self, timeout_seconds: float, on_ready: Callable[[Part], None]) -> Running | None:
        """Until every part answers its ready URL (``on_ready`` as each does); a part that exits first.

        Raises TimeoutError naming the parts still not ready after ``timeout_seconds``.
        """
        import httpx

        waiting = {running.part.name: running.part for running in self.running}
        deadline = time.monotonic() + timeout_seconds
        while waiting:
            finished = self.exited()
            if finished is not None:
                return finished
            for name, part in list(waiting.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(part.ready_url, timeout=1.0).status_code == 200:
                        del waiting[name]
                        on_ready(part)
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout_seconds:.0f} s: {', '.join(sorted(waiting))}")
            if waiting:
                time.sleep(0.2)
        return None

    def wait(self, poll_seconds: float = 0.5) -> Running:
        """Block until a part exits (or a signal interrupts), and return it."""
        while True:
            finished = self.exited()
            if finished is not None:
                return finished
            time.sleep(poll_seconds)

    def stop(self) -> None:
        """Stop every part (SIGTERM, then SIGKILL after a grace period), then the broker we started."""
        order = {"ingest": 0, "api": 1, "worker": 2, "prometheus": 3}
        for running in sorted(self.running, key=lambda item: order.get(item.part.name, 9)):
            process = running.process
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            running.reader.join(timeout=5)
        self.running.clear()
        if self.started_kafka is not None:
            self.started_kafka.stop()
            self.started_kafka = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Counts:
    """What ``up``'s live line shows, as read from the parts' metrics (totals since they started)."""

    events: float = 0.0
    records: float = 0.0
    drift_tests: float = 0.0
    flagged: float = 0.0
    lag_sum: float = 0.0
    lag_count: float = 0.0

    def line(self, before: Counts) -> str:
        """Totals, and the mean event lag (now - event time) of the records since ``before``."""
        new = self.lag_count - before.lag_count
        lag = f"{(self.lag_sum - before.lag_sum) / new:.2f} s" if new > 0 else "-"
        return (
            f"events in {self.events:,.0f} · records {self.records:,.0f} · drift tests "
            f"{self.drift_tests:,.0f} · flagged {self.flagged:,.0f} · lag {lag}"
        )


_COUNTED = {
    "infersight_ingest_events_total": "events",
    "infersight_records_total": "records",
    "infersight_drift_tests_total": "drift_tests",
    "infersight_outliers_total": "flagged",
    "infersight_adversarial_total": "flagged",
    "infersight_event_lag_seconds_sum": "lag_sum",
    "infersight_event_lag_seconds_count": "lag_count",
}


def scrape_counts(urls: Sequence[str]) -> Counts:
    """:class:`Counts` summed over the metrics pages at ``urls``; a page that does not answer counts 0."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    totals = dict.fromkeys(_COUNTED.values(), 0.0)
    for url in urls:
        try:
            text = httpx.get(url, timeout=2.0).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in _COUNTED:
                    totals[_COUNTED[sample.name]] += sample.value
    return Counts(**totals)
