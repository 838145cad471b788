"""POST every detection to a reply URL, without ever holding up the stream.

Detections wait in a bounded queue that one background task drains; a failed POST (a network
error, a 5xx, 408 or 429) is retried with exponential backoff and jitter, up to the configured
number of retries. A detection that still did not go out, or that a full queue pushed out while
the receiver was down, is handed to ``give_up`` (the worker puts it on the dead-letter topic),
so none is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from infersight.records import Detection
from infersight.sinks.detections import to_http

log = logging.getLogger("infersight.reply")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0

GiveUp = Callable[[Detection, str], Coroutine[Any, Any, None]]


class ReplyPoster:
    def __init__(
        self,
        url: str,
        registry: CollectorRegistry,
        timeout_seconds: float = 5.0,
        retries: int = 5,
        queue_size: int = 10_000,
        backoff_seconds: float = BACKOFF_SECONDS,
        give_up: GiveUp | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout_seconds
        self.retries = retries
        self.backoff = backoff_seconds
        self._queue: deque[Detection] = deque(maxlen=queue_size)
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._give_up = give_up
        self._handing_over: set[asyncio.Task[None]] = set()
        self.sent = Counter(
            "infersight_reply_total",
            "Detections for the reply URL, by result: sent, failed (after every retry) or dropped "
            "(pushed out of a full queue); failed and dropped ones go to the dead-letter topic.",
            ["result"],
            registry=registry,
        )

    def submit(self, detections: list[Detection]) -> None:
        """Queue detections for the reply URL; returns at once."""
        for detection in detections:
            if len(self._queue) == self._queue.maxlen:
                self.sent.labels("dropped").inc()
                self._hand_over(self._queue.popleft(), "reply queue full")
            self._queue.append(detection)
        if detections:
            self._idle.clear()
            self._ready.set()

    def _hand_over(self, detection: Detection, reason: str) -> None:
        if self._give_up is None:
            return
        task = asyncio.get_running_loop().create_task(self._give_up(detection, reason))
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="reply-poster")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Give queued detections a few seconds to go out, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), drain_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._handing_over:
            await asyncio.gather(*self._handing_over, return_exceptions=True)

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                if not self._queue:
                    self._idle.set()
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                detection = self._queue.popleft()
                problem = await self._post(client, detection)
                self.sent.labels("sent" if problem is None else "failed").inc()
                if problem is not None:
                    self._hand_over(detection, problem)

    async def _post(self, client: httpx.AsyncClient, detection: Detection) -> str | None:
        """None when the receiver took the detection, else what went wrong the last time."""
        message = to_http(detection)
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(self.url, headers=dict(message.headers), content=message.body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    return None
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
            if attempt < self.retries:
                delay = min(BACKOFF_CAP_SECONDS, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
                await asyncio.sleep(delay)
        log.warning("reply URL %s did not take detection %s: %s", self.url, detection.id, problem)
        return f"reply URL {self.url}: {problem}"
