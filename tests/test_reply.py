"""The reply URL: retried with backoff, never blocking, and what never went out handed to the dead letters."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from infersight.records import Detection, ModelRef
from infersight.sinks.reply import ReplyPoster
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


async def test_retries_then_hands_the_detection_over(receiver: Receiver) -> None:
    given_up: list[tuple[str, str]] = []

    async def give_up(item: Detection, reason: str) -> None:
        given_up.append((item.id, reason))

    registry = CollectorRegistry()
    poster = ReplyPoster(receiver.url, registry, retries=2, backoff_seconds=0.01, give_up=give_up)
    poster.start()
    started = time.perf_counter()
    poster.submit([detection(1)])
    assert time.perf_counter() - started < 0.01  # submitting never waits for the receiver
    await poster.stop(drain_seconds=10)
    assert len(receiver.posts) == 3  # the first try and two retries
    assert receiver.posts[0]["ce-type"] == "io.infersight.detection.drift"
    assert given_up == [("d-1", f"reply URL {receiver.url}: HTTP 503")]
    assert registry.get_sample_value("infersight_reply_total", {"result": "failed"}) == 1


async def test_a_full_queue_hands_over_its_oldest(receiver: Receiver) -> None:
    given_up: list[str] = []

    async def give_up(item: Detection, reason: str) -> None:
        given_up.append(item.id)

    registry = CollectorRegistry()
    poster = ReplyPoster(receiver.url, registry, retries=0, queue_size=2, give_up=give_up)
    poster.submit([detection(number) for number in range(5)])  # not started: nothing drains
    await asyncio.sleep(0)
    assert given_up == ["d-0", "d-1", "d-2"]
    assert registry.get_sample_value("infersight_reply_total", {"result": "dropped"}) == 3
    receiver.status = 204
    poster.start()
    await poster.stop(drain_seconds=10)
    assert [post["ce-id"] for post in receiver.posts] == ["d-3", "d-4"]
    assert registry.get_sample_value("infersight_reply_total", {"result": "sent"}) == 2
