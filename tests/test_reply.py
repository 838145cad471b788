"""The reply URL: retried with backoff, never blocking, and what never went out dead-lettered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from infersight.records import Detection, ModelRef
from infersight.sinks.base import Batch
from infersight.sinks.deadletter import DeadLetters
from infersight.sinks.reply import ReplySink
from tests.helpers import free_port


class Receiver(ThreadingHTTPServer):
    """Answers every POST with ``status`` and counts them."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.posts: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(dict(self.headers.items()))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(503)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def detection(number: int) -> Detection:
    return Detection(
        id=f"d-{number}",
        detector="ks",
        kind="drift",
        model=ModelRef("ns", "m", "default"),
        detected=True,
        statistic=0.5,
        p_value=0.001,
        threshold=0.05,
        window_start=time.time() - 60,
        window_end=time.time(),
        request_ids=("r1", "r2"),
        instances=2,
        time=time.time(),
    )


class Published(list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]):
    """What the dead letters produced, as the worker's producer would send it."""

    def __call__(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.append((topic, key, value, headers))

    def reasons(self) -> list[str]:
        return [dict(headers)["infersight-deadletter-reason"].decode() for _, _, _, headers in self]


def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_retries_then_dead_letters_the_detection(receiver: Receiver) -> None:
    registry, published = CollectorRegistry(), Published()
    sink = ReplySink(
        receiver.url, registry, DeadLetters("dlq", published, registry), retries=2, backoff_seconds=0.01
    )
    sink.start()
    started = time.perf_counter()
    sink.write(Batch(detections=[detection(1)]))
    sink.flush()
    assert time.perf_counter() - started < 0.05  # neither write nor flush waits for the receiver
    wait_until(lambda: registry.get_sample_value("infersight_reply_total", {"result": "failed"}) == 1)
    sink.stop(drain_seconds=10)
    assert len(receiver.posts) == 3  # the first try and two retries
    assert receiver.posts[0]["ce-type"] == "io.infersight.detection.drift"
    sink.flush()  # the next checkpoint dead-letters what was given up
    assert published.reasons() == [f"reply_failed: reply URL {receiver.url}: HTTP 503"]
    topic, key, _, headers = published[0]
    assert topic == "dlq" and key == b"ns/m" and dict(headers)["ce_id"] == b"d-1"
    assert registry.get_sample_value("infersight_deadletters_total", {"reason": "reply_failed"}) == 1


def test_a_full_queue_dead_letters_its_oldest(receiver: Receiver) -> None:
    registry, published = CollectorRegistry(), Published()
    sink = ReplySink(receiver.url, registry, DeadLetters("dlq", published, registry), retries=0, queue_size=2)
    sink.write(Batch(detections=[detection(number) for number in range(5)]))  # not started: nothing drains
    sink.flush()
    assert [dict(headers)["ce_id"] for _, _, _, headers in published] == [b"d-0", b"d-1", b"d-2"]
    assert registry.get_sample_value("infersight_reply_total", {"result": "dropped"}) == 3
    receiver.status = 204
    sink.start()
    sink.stop(drain_seconds=10)
    assert [post["ce-id"] for post in receiver.posts] == ["d-3", "d-4"]
    assert registry.get_sample_value("infersight_reply_total", {"result": "sent"}) == 2
