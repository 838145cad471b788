"""POST every detection to a reply URL, without ever holding up the stream.

Detections wait in a bounded queue that one background thread drains; a failed POST (a network
error, a 5xx, 408 or 429) is retried with exponential backoff and jitter, up to the configured
number of retries. A detection that still did not go out, or that a full queue pushed out while
the receiver was down, is dead-lettered with the reason at the next flush, from the worker's own
thread, so that it joins the same checkpoint (and transaction) as everything else: none is lost
silently. What is still queued when a worker is killed is on the detections topic and in the
store, but not posted.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections import deque

import httpx
from prometheus_client import CollectorRegistry, Counter

from infersight.records import Detection
from infersight.sinks.base import Batch
from infersight.sinks.deadletter import DeadLetters
from infersight.sinks.detections import to_http

log = logging.getLogger("infersight.reply")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0


class ReplySink:
    """The reply URL as a sink: ``write`` queues, a thread posts, ``flush`` dead-letters give-ups."""

    name = "reply"

    def __init__(
        self,
        url: str,
        registry: CollectorRegistry,
        deadletters: DeadLetters | None = None,
        *,
        timeout_seconds: float = 5.0,
        retries: int = 5,
        queue_size: int = 10_000,
        backoff_seconds: float = BACKOFF_SECONDS,
    ) -> None:
        self.url = url
        self.timeout = timeout_seconds
        self.retries = retries
        self.backoff = backoff_seconds
        self.deadletters = deadletters
        self._queue: deque[Detection] = deque(maxlen=queue_size)
        self._lock = threading.Condition()
        self._busy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Detections that never went out, with why: dead-lettered at the next flush.
        self.given_up: queue.SimpleQueue[tuple[Detection, str]] = queue.SimpleQueue()
        self.sent = Counter(
            "infersight_reply_total",
            "Detections for the reply URL, by result: sent, failed (after every retry) or dropped "
            "(pushed out of a full queue); failed and dropped ones go to the dead-letter topic.",
            ["result"],
            registry=registry,
        )

    def write(self, batch: Batch) -> None:
        """Queue the batch's detections for the reply URL; returns at once."""
        with self._lock:
            for detection in batch.detections:
                if len(self._queue) == self._queue.maxlen:
                    self.sent.labels("dropped").inc()
                    self.given_up.put((self._queue.popleft(), "reply queue full"))
                self._queue.append(detection)
            self._lock.notify_all()

    def flush(self) -> None:
        """Dead-letter what the poster gave up on; posting itself never holds up a checkpoint."""
        while True:
            try:
                detection, reason = self.given_up.get_nowait()
            except queue.Empty:
                return
            if self.deadletters is not None:
                self.deadletters.detection(detection, "reply_failed", reason)

    @property
    def pending(self) -> bool:
        """Detections given up on, to dead-letter at the next flush."""
        return not self.given_up.empty()

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="reply-poster", daemon=True)
            self._thread.start()

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Give queued detections a few seconds to go out, then stop."""
        if self._thread is None:
            return
        with self._lock:
            self._lock.wait_for(lambda: not self._queue and not self._busy, timeout=drain_seconds)
            self._stopping.set()
            self._lock.notify_all()
        self._thread.join(timeout=self.timeout + 1)
        self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while True:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
                    self._lock.wait_for(lambda: bool(self._queue) or self._stopping.is_set())
                    if self._stopping.is_set():
                        return
                    detection = self._queue.popleft()
                    self._busy = True
                problem = self._post(client, detection)
                self.sent.labels("sent" if problem is None else "failed").inc()
                if problem is not None:
                    self.given_up.put((detection, problem))

    def _post(self, client: httpx.Client, detection: Detection) -> str | None:
        """None when the receiver took the detection, else what went wrong the last time."""
        message = to_http(detection)
        for attempt in range(self.retries + 1):
            try:
                response = client.post(self.url, headers=dict(message.headers), content=message.body)
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
                if self._stopping.wait(delay):
                    break
        log.warning("reply URL %s did not take detection %s: %s", self.url, detection.id, problem)
        return f"reply URL {self.url}: {problem}"
