"""The ingest application: the event receiver in front, FastAPI for health, metrics and OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from infersight.config import Settings
from infersight.ingest.metrics import IngestMetrics
from infersight.ingest.publisher import KafkaPublisher
from infersight.ingest.receiver import EVENT_PATHS, ASGIApp, Receiver

_RESPONSES = {
    202: {"description": "Every event in the request is in Kafka."},
    400: {"description": "Malformed CloudEvent or body."},
    401: {"description": "Missing or invalid bearer token (when tokens are configured)."},
    413: {"description": "Body over the size limit."},
    415: {"description": "Not a CloudEvent content type."},
    503: {"description": "Kafka cannot take the event now; retry after Retry-After seconds."},
}


def create_api(settings: Settings, registry: CollectorRegistry | None = None) -> tuple[FastAPI, Receiver]:
    """The FastAPI application and the receiver it shares its producer and metrics with."""
    registry = registry or CollectorRegistry()
    for collector in (
        process_collector.ProcessCollector,
        platform_collector.PlatformCollector,
        gc_collector.GCCollector,
    ):
        collector(registry=registry)
    publisher = KafkaPublisher(settings.kafka, settings.ingest)
    receiver = Receiver(
        settings.ingest, publisher, IngestMetrics(registry, settings.ingest.max_models_in_metrics)
    )
    retry_after = str(settings.ingest.retry_after_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    api = FastAPI(
        title="infersight ingest",
        summary="Receives CloudEvents from model-serving loggers and writes them to Kafka.",
        lifespan=lifespan,
    )

    async def receive_events(request: Request) -> Response:
        """Receive CloudEvents in binary, structured or batch mode; 202 once Kafka has them all."""
        status, body, headers = await receiver.handle(request.scope, request.receive)
        return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})

    for path in sorted(EVENT_PATHS):
        api.add_api_route(path, receive_events, methods=["POST"], status_code=202, responses=_RESPONSES)  # type: ignore[arg-type]

    @api.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/readyz", summary="Kafka is reachable", responses={503: {"description": "Kafka is unreachable."}}
    )
    async def readyz() -> Response:
        if await publisher.ready():
            return Response(b'{"status":"ready"}', media_type="application/json")
        return Response(
            b'{"status":"kafka unreachable"}',
            status_code=503,
            media_type="application/json",
            headers={"Retry-After": retry_after},
        )

    if settings.api.enabled:
        from infersight.sinks.api import mount_query_api

        mount_query_api(api, settings)

    @api.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api, receiver


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> ASGIApp:
    """The ASGI application ``infersight ingest`` serves."""
    api, receiver = create_api(settings, registry)
    return receiver.front(api)
