"""The whole local stack as child processes: ingest, worker and query API, with a local Kafka.

Each part runs as its own ``infersight`` process in its own session, so that Ctrl-C reaches only
the supervisor, which then stops the parts in order (the ingest first, so nothing new arrives;
the worker next, so it commits what it handled; the broker last, and only if it started it).
Their output is streamed line by line with a prefix naming the part.
"""

from __future__ import annotations

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
from infersight.localkafka import LocalKafka
from infersight.localkafka.runner import broker_answers

STOP_TIMEOUT_SECONDS = 30.0

LineSink = Callable[[str, str], None]


@dataclass(frozen=True)
class Part:
    """One process of the stack: its name, its command line and what it serves."""

    name: str
    arguments: tuple[str, ...]
    listens: str


def parts(settings: Settings, host: str) -> list[Part]:
    """The processes ``infersight up`` runs, in start order."""
    ingest = settings.ingest
    worker = settings.worker
    api = settings.api
    return [
        Part("worker", ("worker",), f"metrics http://{host}:{worker.metrics_port}/metrics"),
        Part(
            "ingest",
            ("ingest",),
            f"CloudEvents http://{host}:{ingest.port}/  metrics http://{host}:{ingest.port}/metrics",
        ),
        Part(
            "api",
            ("api",),
            f"web UI http://{host}:{api.port}/ui/  query API http://{host}:{api.port}/v1/models"
            f"  docs http://{host}:{api.port}/docs",
        ),
    ]


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
    started_kafka: LocalKafka | None = None
    running: list[Running] = field(default_factory=list)

    def kafka_needed(self) -> LocalKafka | None:
        """The local broker to start, or None when one already answers at the bootstrap servers."""
        kafka = self.settings.kafka
        options = librdkafka_config(kafka)
        if broker_answers(kafka.bootstrap_servers, timeout_seconds=2.0, client_options=options):
            return None
        return LocalKafka(self.settings.local_kafka)

    def start_kafka(self, kafka: LocalKafka) -> None:
        kafka.start()
        self.started_kafka = kafka

    def _command(self, part: Part) -> list[str]:
        config = ["--config", str(self.config_path)] if self.config_path is not None else []
        return [sys.executable, "-m", "infersight", *config, *part.arguments]

    def start(self, chosen: Sequence[Part]) -> None:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
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

    def wait(self, poll_seconds: float = 0.5) -> Running:
        """Block until a part exits (or a signal interrupts), and return it."""
        while True:
            finished = self.exited()
            if finished is not None:
                return finished
            time.sleep(poll_seconds)

    def stop(self) -> None:
        """Stop every part (SIGTERM, then SIGKILL after a grace period), then the broker we started."""
        order = {"ingest": 0, "api": 1, "worker": 2}
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
