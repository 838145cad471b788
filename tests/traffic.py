"""KServe traffic posted to a running ingest from background threads, every answer remembered."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import httpx

from tests.test_ingest import KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE, kserve_headers

HALVES = (("request", KSERVE_V1_REQUEST), ("response", KSERVE_V1_RESPONSE))


class Traffic:
    """Senders posting inferences until stopped: a request alone, or a request and its response.

    ``answers`` maps each inference id to the statuses of its halves; an inference counts as
    acknowledged when every half was answered 202.
    """

    def __init__(self, url: str, *, pairs: bool = False, senders: int = 4, pause: float = 0.01) -> None:
        self.url = url
        self.halves = HALVES if pairs else HALVES[:1]
        self.pause = pause
        self.answers: dict[str, list[int]] = {}
        self.retry_after: set[str] = set()
        #: Why posts got no answer, by exception type.
        self.errors: Counter[str] = Counter()
        #: Seconds the slowest answer took.
        self.slowest = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send) for _ in range(senders)]

    def _send(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                event_id = str(uuid.uuid4())
                statuses = []
                for kind, body in self.halves:
                    try:
                        answer = client.post(self.url, headers=kserve_headers(event_id, kind), content=body)
                    except httpx.HTTPError as exc:
                        statuses.append(0)
                        with self._lock:
                            self.errors[f"{type(exc).__name__}: {exc}"] += 1
                        continue
                    statuses.append(answer.status_code)
                    with self._lock:
                        self.slowest = max(self.slowest, answer.elapsed.total_seconds())
                        if answer.status_code == 503:
                            self.retry_after.add(answer.headers.get("retry-after", ""))
                with self._lock:
                    self.answers[event_id] = statuses
                time.sleep(self.pause)

    def count(self) -> Counter[int]:
        """Answers by status, over every half sent."""
        with self._lock:
            return Counter(status for statuses in self.answers.values() for status in statuses)

    def acknowledged(self) -> set[str]:
        with self._lock:
            return {event_id for event_id, statuses in self.answers.items() if set(statuses) == {202}}

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
