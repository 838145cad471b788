"""The stack the demo sends to: its own (started with ``Stack``), or one that already runs."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from infersight.config import Settings
from infersight.localstack import PartOutput, Stack, parts


class StackError(Exception):
    """The stack could not be started or reached; the message says which part and why."""


def port_or_free(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(url: str, stack: Stack | None, log: Path | None, timeout: float = 180.0) -> None:
    """Poll ``url`` until it answers 200; a stack part that exits meanwhile is an error."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        finished = stack.exited() if stack is not None else None
        if finished is not None:
            where = f"; its log is in {log}" if log is not None else ""
            raise StackError(f"{finished.part.name} exited with status {finished.process.returncode}{where}")
        if time.monotonic() > deadline:
            raise StackError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


@contextlib.contextmanager
def own_stack(
    settings: Settings, config: Path, log: Path, after_parts_stop: Callable[[], None]
) -> Iterator[Stack]:
    """Kafka (when none answers), worker, ingest and query API, their output in ``log``.

    ``after_parts_stop`` runs once the processes stopped, while the broker still answers.
    """
    from infersight.localkafka import LocalKafkaError
    from infersight.sinks.store import StoreError, make_engine, upgrade

    output = PartOutput(log)
    try:
        with Stack(settings, config, output, host="127.0.0.1") as stack:
            try:
                broker = stack.kafka_needed()
                if broker is not None:
                    stack.start_kafka(broker)
                if settings.store.enabled:
                    upgrade(make_engine(settings.store.url))
            except (LocalKafkaError, StoreError) as exc:
                raise StackError(str(exc)) from exc
            stack.start(parts(settings, "127.0.0.1"))
            try:
                wait_until_answers(f"http://127.0.0.1:{settings.worker.metrics_port}/metrics", stack, log)
                wait_until_answers(f"http://127.0.0.1:{settings.ingest.port}/readyz", stack, log)
                yield stack
            finally:
                broker, stack.started_kafka = stack.started_kafka, None
                stack.stop()
                after_parts_stop()
                stack.started_kafka = broker
    finally:
        output.close()
