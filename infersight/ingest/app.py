"""The ingest application: the event receiver in front, FastAPI for health, metrics and OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response, Security
from fastapi.security import HTTPBearer
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from pydantic import BaseModel, Field

from infersight.config import Settings
from infersight.eventformat import BATCH, STRUCTURED
from infersight.ingest.metrics import IngestMetrics, SpoolCollector
from infersight.ingest.publisher import KafkaPublisher
from infersight.ingest.receiver import EVENT_PATHS, Receiver
from infersight.metriclabels import RecentRevisions
from infersight.privacy import TrafficRules
from infersight.sinks.web import add_docs


class Accepted(BaseModel):
    accepted: int = Field(description="Events in the request, every one now in Kafka.")


class Refused(BaseModel):
    error: str = Field(description="Why the request was refused.")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Refused, "description": "Malformed CloudEvent or body."},
    401: {"model": Refused, "description": "Missing or invalid bearer token (when tokens are configured)."},
    413: {"model": Refused, "description": "Body over the size limit."},
    415: {"model": Refused, "description": "Not a CloudEvent content type, or an unknown Content-Encoding."},
    503: {
        "model": Refused,
        "description": "Kafka cannot take the event now; retry after Retry-After seconds.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}

_TEXT = {"type": "string", "minLength": 1}
_CLOUDEVENT: dict[str, Any] = {
    "type": "object",
    "title": "CloudEvent",
    "description": "One event in the CloudEvents JSON format. Extension attributes (lower-case letters and "
    "digits) are strings, integers or booleans; `data` (JSON, or text for a non-JSON datacontenttype) "
    "and `data_base64` exclude each other.",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0", "0.3"]},
        "id": _TEXT,
        "source": _TEXT,
        "type": _TEXT,
        "time": {"type": "string", "format": "date-time"},
        "subject": _TEXT,
        "datacontenttype": _TEXT,
        "dataschema": _TEXT,
        "data": {},
        "data_base64": {"type": "string", "contentEncoding": "base64"},
    },
    "propertyNames": {"pattern": "^([a-z0-9]+|data_base64)$"},
    "additionalProperties": {"type": ["string", "integer", "boolean"]},
}


def _ce_header(attribute: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": f"ce-{attribute}",
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema or _TEXT,
    }


#: What ``POST /`` and ``POST /events`` take. The receiver reads the request itself, so FastAPI
#: cannot derive this from a signature: binary mode (``ce-*`` headers, any body), structured mode
#: (one event as JSON) or batch mode (an array of them).
_EVENT_REQUEST: dict[str, Any] = {
    "parameters": [
        _ce_header(
            "specversion",
            "Binary mode: its presence selects binary mode.",
            type="string",
            enum=["1.0", "0.3"],
        ),
        _ce_header("id", "Binary mode: the event id (KServe: the request id), required."),
        _ce_header("source", "Binary mode: required."),
        _ce_header("type", "Binary mode: e.g. org.kubeflow.serving.inference.request, required."),
        _ce_header("time", "Binary mode: RFC 3339.", type="string", format="date-time"),
        _ce_header("inferenceservicename", "The model (KServe and Seldon loggers send it)."),
        _ce_header("namespace", "The model's namespace."),
        _ce_header("endpoint", "The model's endpoint (default, canary)."),
        _ce_header("component", "The component that logged the event (predictor, transformer)."),
        _ce_header("requestid", "Seldon: the request both halves of an inference share."),
        {
            "name": "content-encoding",
            "in": "header",
            "required": False,
            "description": "Binary mode: gzip when the body is compressed.",
            "schema": {"type": "string", "enum": ["gzip", "identity"]},
        },
    ],
    "requestBody": {
        "required": False,
        "description": "The event data in binary mode, one event in structured mode, an array in batch mode.",
        "content": {
            "application/json": {"schema": {"description": "Binary mode: the data, with ce-* headers."}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "description": "Binary mode: the data."}
            },
            STRUCTURED: {"schema": _CLOUDEVENT},
            BATCH: {"schema": {"type": "array", "items": _CLOUDEVENT}},
        },
    },
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
    registry.register(SpoolCollector(publisher))
    receiver = Receiver(
        settings.ingest,
        publisher,
        IngestMetrics(
            registry,
            settings.ingest.max_models_in_metrics,
            RecentRevisions(settings.ingest.max_revisions_in_metrics),
        ),
        TrafficRules(settings.models, settings.ingest.max_body_bytes),
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
        docs_url=None,
        redoc_url=None,
    )

    async def receive_events(request: Request) -> Response:
        """Receive CloudEvents in binary, structured or batch mode; 202 once Kafka has them all."""
        status, body, headers = await receiver.handle(request.scope, request.receive)
        return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})

    # The receiver checks the token itself; this dependency only puts the scheme in the OpenAPI document.
    bearer = [Security(HTTPBearer(scheme_name="ingestToken", auto_error=False))]
    for path in sorted(EVENT_PATHS):
        api.add_api_route(
            path,
            receive_events,
            methods=["POST"],
            status_code=202,
            response_model=Accepted,
            response_description="Every event in the request is in Kafka.",
            responses=_RESPONSES,
            openapi_extra=_EVENT_REQUEST,
            dependencies=bearer if settings.ingest.auth_tokens else None,
        )

    @api.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get(
        "/readyz",
        summary="The ingest can acknowledge events: Kafka is reachable, or the spool has room",
        responses={503: {"description": "Neither Kafka nor the spool can take events."}},
    )
    async def readyz() -> Response:
        status: dict[str, str | int]
        if receiver.draining:
            status, code = {"status": "draining", "detail": "stopping: send to another ingest"}, 503
        elif await publisher.kafka_ready():
            status, code = {"status": "ready"}, 200
        elif publisher.spool_can_take():
            # Still ready: taken out of its Service, the ingest would lose what loggers send.
            status, code = {"status": "degraded", "detail": "Kafka is unreachable; events are spooled"}, 200
        else:
            status, code = {"status": "kafka unreachable"}, 503
        spool = publisher.spool
        if spool is not None:
            status["spooled_events"] = spool.events
        return Response(
            orjson.dumps(status),
            status_code=code,
            media_type="application/json",
            headers={"Retry-After": retry_after} if code == 503 else None,
        )

    if settings.api.enabled:
        from infersight.sinks.api import mount_query_api

        mount_query_api(api, settings)
    add_docs(api)

    @api.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api, receiver
