"""The hot path: one HTTP request in, its events acknowledged by Kafka, one answer out.

It speaks plain ASGI. FastAPI's routing and middleware cost more CPU per request than parsing
and producing the event together, so ``POST /`` and ``POST /events`` reach this class first
and everything else (health, metrics, OpenAPI) goes on to the FastAPI application.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from infersight.config import IngestConfig
from infersight.eventformat import InvalidEvent
from infersight.ingest.auth import BearerAuth
from infersight.ingest.errors import IngestError
from infersight.ingest.metrics import IngestMetrics
from infersight.ingest.parsing import parse_request
from infersight.ingest.publisher import KafkaPublisher
from infersight.privacy import TrafficRules
from infersight.records import RawEvent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

EVENT_PATHS = frozenset({"/", "/events"})
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers with lower-case names and UTF-8 values (CloudEvents attributes are UTF-8)."""
    try:
        return {name.decode("latin-1"): value.decode("utf-8") for name, value in scope["headers"]}
    except UnicodeDecodeError as exc:
        raise IngestError("malformed", "a header value is not valid UTF-8") from exc


def _authorization(scope: Scope) -> str | None:
    """The Authorization header alone, read before anything else so that no other header is looked at
    for a client without a token (bytes that are not UTF-8 become U+FFFD, which no token matches)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("utf-8", "replace"))
    return None


async def _read_body(headers: dict[str, str], receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise IngestError("too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise IngestError("malformed", "the client disconnected before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise IngestError("too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class Receiver:
    """Parses, publishes and answers; counts every outcome."""

    def __init__(
        self,
        config: IngestConfig,
        publisher: KafkaPublisher,
        metrics: IngestMetrics,
        rules: TrafficRules | None = None,
    ) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.rules = rules
        self.auth = BearerAuth(config.auth_tokens)
        self.limit = config.max_body_bytes
        self.retry_after = str(config.retry_after_seconds).encode()
        #: Set on SIGTERM: every answer closes its connection, so the client's next one goes elsewhere.
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, JSON body and headers of the answer to one request."""
        started = time.perf_counter()
        try:
            self.auth.check(_authorization(scope))
            headers = _headers(scope)
            events = parse_request(headers, await _read_body(headers, receive, self.limit), self.limit)
            kept = self._kept(events)
            if kept:
                await self.publisher.publish(kept)
        except IngestError as exc:
            self.metrics.rejected_for(exc.reason)
            extra = [(b"retry-after", self.retry_after)] if exc.status == 503 else []
            return exc.status, orjson.dumps({"error": exc.message}), [_JSON, *extra]
        finally:
            self.metrics.request_duration.observe((), time.perf_counter() - started)
        for event in kept:
            self.metrics.accepted(event)
        return 202, orjson.dumps({"accepted": len(events)}), [_JSON]

    def _kept(self, events: list[RawEvent]) -> list[RawEvent]:
        """The events sampling keeps, redacted; the others are counted and answered 202 too."""
        if self.rules is None or self.rules.empty:
            return events
        kept = []
        for index, event in enumerate(events):
            try:
                allowed = self.rules.apply(event)
            except InvalidEvent as exc:
                raise IngestError("malformed", f"event [{index}]: {exc}") from exc
            if allowed is None:
                self.metrics.sampled_out(event)
            else:
                kept.append(allowed)
        return kept

    def front(self, app: ASGIApp) -> ASGIApp:
        """An ASGI app that answers event POSTs itself and passes everything else to ``app``."""

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in EVENT_PATHS:
                status, body, headers = await self.handle(scope, receive)
                headers.append((b"content-length", str(len(body)).encode()))
                if self.draining:
                    headers.append(_CLOSE)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:
                await app(scope, receive, send)

        return dispatch
