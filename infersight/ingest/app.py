"""The HTTP CloudEvents receiver: ``POST /`` and ``POST /events``, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import ORJSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import gc_collector, platform_collector, process_collector

from infersight.config import Settings
from infersight.ingest.auth import BearerAuth
from infersight.ingest.errors import IngestError
from infersight.ingest.metrics import IngestMetrics
from infersight.ingest.parsing import parse_request
from infersight.ingest.publisher import KafkaPublisher
from infersight.kafkaclient import ensure_topics

log = logging.getLogger("infersight.ingest")


def _headers(request: Request) -> dict[str, str]:
    """Request headers with lower-case names and UTF-8 values (CloudEvents attributes are UTF-8)."""
    try:
        return {name.decode("latin-1"): value.decode("utf-8") for name, value in request.scope["headers"]}
    except UnicodeDecodeError as exc:
        raise IngestError("malformed", "a header value is not valid UTF-8") from exc


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise IngestError("too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError("too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    """The ingest application; Kafka topics are created and the producer started on startup."""
    registry = registry or CollectorRegistry()
    for collector in (process_collector.ProcessCollector, platform_collector.PlatformCollector, gc_collector.GCCollector):
        collector(registry=registry)
    metrics = IngestMetrics(registry, settings.ingest.max_models_in_metrics)
    publisher = KafkaPublisher(settings.kafka, settings.ingest)
    auth = BearerAuth(settings.ingest.auth_tokens)
    limit = settings.ingest.max_body_bytes
    retry_after = str(settings.ingest.retry_after_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.kafka.create_topics:
            topics = settings.kafka.topics
            created = await asyncio.to_thread(
                ensure_topics, settings.kafka, [topics.payloads, topics.detections, topics.deadletter]
            )
            if created:
                log.info("created Kafka topics %s", ", ".join(created))
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="infersight ingest",
        summary="Receives CloudEvents from model-serving loggers and writes them to Kafka.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.state.publisher = publisher

    async def receive(request: Request) -> Response:
        started = time.perf_counter()
        try:
            auth.check(request.headers.get("authorization"))
            body = await _read_body(request, limit)
            events = parse_request(_headers(request), body, limit)
            if events:
                await publisher.publish(events)
        except IngestError as exc:
            metrics.rejected_for(exc.reason)
            headers = {"Retry-After": retry_after} if exc.status == 503 else None
            return ORJSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
        finally:
            metrics.request_duration.observe(time.perf_counter() - started)
        for event in events:
            metrics.accepted(event.type, event.model)
        return ORJSONResponse({"accepted": len(events)}, status_code=202)

    responses = {
        202: {"description": "Every event in the request is in Kafka."},
        400: {"description": "Malformed CloudEvent or body."},
        401: {"description": "Missing or invalid bearer token (when tokens are configured)."},
        413: {"description": "Body over the size limit."},
        415: {"description": "Not a CloudEvent content type."},
        503: {"description": "Kafka cannot take the event now; retry after Retry-After seconds."},
    }
    for path in ("/", "/events"):
        app.add_api_route(
            path,
            receive,
            methods=["POST"],
            status_code=202,
            responses=responses,  # type: ignore[arg-type]
            summary="Receive CloudEvents (binary, structured or batch mode)",
        )

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka is reachable")
    async def readyz() -> Response:
        if await publisher.ready():
            return ORJSONResponse({"status": "ready"})
        return ORJSONResponse({"status": "kafka unreachable"}, status_code=503, headers={"Retry-After": retry_after})

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
