"""The query API: ``GET /v1/models``, ``/v1/payloads``, ``/v1/detections`` and what the web UI draws.

A router, so that ``infersight api`` serves it alone and the ingest can mount it (``api.enabled``).
The handlers are plain functions: FastAPI runs them in its thread pool, off the event loop.
Every error, a malformed parameter included, is ``{"error": ...}`` with 400 or 401.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy import Engine

from infersight.config import ApiConfig, Settings
from infersight.sinks.canary import CanaryRequest, judge_canary
from infersight.sinks.canarymetrics import CanaryCollector
from infersight.sinks.store.engine import make_engine
from infersight.sinks.store.filters import DetectionFilter, PayloadFilter, QueryError
from infersight.sinks.store.migrate import require_current, upgrade
from infersight.sinks.store.query import list_detections, list_models, list_payloads, list_revisions
from infersight.sinks.store.series import distributions, timeline
from infersight.sinks.store.views import (
    CanaryVerdict,
    DetectionPage,
    ModelSummary,
    PayloadPage,
    RevisionSummary,
    Timeline,
    WindowDistributions,
)
from infersight.sinks.web import add_docs, add_ui
from infersight.times import parse_moment


class ApiError(BaseModel):
    error: str = Field(description="What was wrong with the request.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "A filter or cursor that cannot be used."},
    401: {"model": ApiError, "description": "Missing or invalid bearer token (when tokens are configured)."},
}


def _moment(value: object) -> object:
    """A time parameter as the CLI reads it (:func:`parse_moment`): a time, UTC when zone-less, or an age.

    Pydantic alone would also take a bare number as Unix seconds (``since=20250301`` would be 1970);
    a time with no UTC equivalent (year 1 at +01:00) is refused here too, not by the database driver.
    """
    if not isinstance(value, str):
        return value
    return parse_moment(value)


# At module level: with postponed annotations FastAPI resolves these names in the module's globals.
Time = Annotated[datetime, BeforeValidator(_moment)]
Limit = Annotated[int, Query(ge=1, description="Items per page (at most api.max_page_size).")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]
Since = Annotated[
    Time | None,
    Query(description="From this time, inclusive: RFC 3339 (UTC when zone-less) or an age (15m, 2h, 7d)."),
]
Until = Annotated[Time | None, Query(description="Until this time, exclusive; the same forms as since.")]
Flag = Annotated[bool | None, Query(description="Flagged (true) or not (false).")]
InDrift = Annotated[bool | None, Query(description="Inside (true) or outside a window with drift found.")]
InDetection = Annotated[str | None, Query(description="Inside this detection's window.")]
Detail = Annotated[bool, Query(description="Include tensors, scores and attributes.")]
Bodies = Annotated[bool, Query(description="Include the raw bodies, base64.")]
Kind = Annotated[str | None, Query(pattern="^(drift|outlier|adversarial)$")]
Component = Annotated[
    str | None, Query(description="Only this KServe component (predictor, transformer, explainer).")
]
Revision = Annotated[str | None, Query(description="Only inferences this revision served.")]
#: The Authorization header, parsed; declared as a security scheme in the OpenAPI document.
Token = Annotated[
    HTTPAuthorizationCredentials | None, Security(HTTPBearer(scheme_name="apiToken", auto_error=False))
]


class Unauthorized(Exception):
    """No or a wrong bearer token."""


def bearer_check(config: ApiConfig) -> Callable[[HTTPAuthorizationCredentials | None], None] | None:
    """A dependency that refuses requests without one of the configured tokens (constant-time compare).

    None when no tokens are configured: the routes are open, and the OpenAPI document says so.
    """
    tokens = [token.get_secret_value().encode() for token in config.auth_tokens]
    if not tokens:
        return None

    def check(credentials: Token) -> None:
        if credentials is None:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        presented = credentials.credentials.strip().encode()
        matched = False
        for token in tokens:
            matched |= hmac.compare_digest(presented, token)
        if not matched:
            raise Unauthorized("invalid bearer token")

    return check


def query_router(engine: Engine, config: ApiConfig) -> APIRouter:
    """``/v1/...`` over the store behind ``engine``."""
    check = bearer_check(config)
    router = APIRouter(
        prefix="/v1", tags=["query"], dependencies=[Depends(check)] if check else [], responses=_ERRORS
    )

    def page_size(limit: int) -> int:
        if limit > config.max_page_size:
            raise QueryError(f"limit must be at most {config.max_page_size} (api.max_page_size)")
        return limit

    @router.get("/models", summary="Models with stored inferences or detections")
    def models() -> list[ModelSummary]:
        return list_models(engine)

    @router.get("/payloads", summary="Stored inferences, newest first")
    def payloads(
        namespace: str | None = None,
        inferenceservice: str | None = None,
        endpoint: str | None = None,
        component: Component = None,
        since: Since = None,
        until: Until = None,
        outlier: Flag = None,
        adversarial: Flag = None,
        labelled: bool | None = None,
        in_drift: InDrift = None,
        detection: InDetection = None,
        revision: Revision = None,
        limit: Limit = 100,
        cursor: Cursor = None,
        detail: Detail = True,
        bodies: Bodies = False,
    ) -> PayloadPage:
        where = PayloadFilter(
            namespace=namespace,
            inferenceservice=inferenceservice,
            endpoint=endpoint,
            component=component,
            since=since,
            until=until,
            outlier=outlier,
            adversarial=adversarial,
            labelled=labelled,
            in_drift=in_drift,
            detection=detection,
            revision=revision,
        )
        size = page_size(limit)
        return list_payloads(engine, where, limit=size, cursor=cursor, detail=detail, bodies=bodies)

    @router.get("/detections", summary="Drift, outlier and adversarial detections, newest first")
    def detections(
        namespace: str | None = None,
        inferenceservice: str | None = None,
        endpoint: str | None = None,
        component: Component = None,
        since: Since = None,
        until: Until = None,
        kind: Kind = None,
        detector: str | None = None,
        detected: bool | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> DetectionPage:
        where = DetectionFilter(
            namespace=namespace,
            inferenceservice=inferenceservice,
            endpoint=endpoint,
            component=component,
            since=since,
            until=until,
            kind=kind,
            detector=detector,
            detected=detected,
        )
        return list_detections(engine, where, limit=page_size(limit), cursor=cursor)

    @router.get("/timeline", summary="Inferences, flags and accuracy per time bucket, for charts")
    def traffic(
        namespace: str | None = None,
        inferenceservice: str | None = None,
        endpoint: str | None = None,
        component: Component = None,
        since: Since = None,
        until: Until = None,
        revision: Revision = None,
        buckets: Annotated[int, Query(ge=1, le=500, description="Buckets over the span.")] = 60,
    ) -> Timeline:
        where = PayloadFilter(
            namespace=namespace,
            inferenceservice=inferenceservice,
            endpoint=endpoint,
            component=component,
            since=since,
            until=until,
            revision=revision,
        )
        return timeline(engine, where, buckets)

    @router.get(
        "/canary",
        summary="A candidate revision against its baseline, window by window: promote, hold or roll back",
    )
    def canary(
        inferenceservice: str,
        namespace: str | None = None,
        component: Component = None,
        baseline: Annotated[str | None, Query(description="Default: the revision seen first.")] = None,
        candidate: Annotated[str | None, Query(description="Default: the revision seen last.")] = None,
        since: Since = None,
        until: Until = None,
        window_seconds: Annotated[float, Query(ge=1)] = 300,
        p_val: Annotated[float, Query(gt=0, le=0.5)] = 0.05,
        min_instances: Annotated[int, Query(ge=2)] = 30,
        confirm: Annotated[int, Query(ge=1)] = 3,
    ) -> CanaryVerdict:
        where = PayloadFilter(
            namespace=namespace,
            inferenceservice=inferenceservice,
            component=component,
            since=since,
            until=until,
        )
        request = CanaryRequest(where, baseline, candidate, window_seconds, p_val, min_instances, confirm)
        return judge_canary(engine, request)

    @router.get("/revisions", summary="The revisions that served a model: traffic, flags, labels")
    def revisions(
        namespace: str | None = None,
        inferenceservice: str | None = None,
        component: Component = None,
        since: Since = None,
        until: Until = None,
    ) -> list[RevisionSummary]:
        where = PayloadFilter(
            namespace=namespace,
            inferenceservice=inferenceservice,
            component=component,
            since=since,
            until=until,
        )
        return list_revisions(engine, where)

    @router.get(
        "/detections/{detection_id}/distributions",
        summary="A drift window's features beside a reference: histograms binned alike, p-values",
    )
    def window_distributions(
        detection_id: str,
        reference_since: Since = None,
        reference_until: Until = None,
        bins: Annotated[int, Query(ge=2, le=200)] = 20,
    ) -> WindowDistributions:
        reference = None
        if reference_since is not None or reference_until is not None:
            reference = PayloadFilter(since=reference_since, until=reference_until)
        return distributions(engine, detection_id, reference=reference, bins=bins)

    return router


def _validation_message(exc: RequestValidationError) -> str:
    """``since: expected a time ...``: each refused parameter by name, with pydantic's reason."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {reason}")
    return "; ".join(parts)


def add_error_handlers(app: FastAPI) -> None:
    """Errors as ``{"error": ...}``, the same shape as the ingest's; a malformed parameter is a 400."""

    async def bad_query(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def bad_parameter(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": _validation_message(exc)}, status_code=400)

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    app.add_exception_handler(QueryError, bad_query)
    app.add_exception_handler(RequestValidationError, bad_parameter)
    app.add_exception_handler(Unauthorized, unauthorized)


def create_query_app(engine: Engine, config: ApiConfig) -> FastAPI:
    """What ``infersight api`` serves: the query routes, ``/healthz``, the web UI and the OpenAPI document."""
    app = FastAPI(
        title="infersight query API",
        summary="Stored payloads, detections and models.",
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(query_router(engine, config))
    add_error_handlers(app)
    add_ui(app)
    add_docs(app)
    registry = CollectorRegistry()
    registry.register(
        CanaryCollector(
            engine,
            config.canary_lookback_seconds,
            config.canary_window_seconds,
            config.canary_refresh_seconds,
        )
    )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """The canary verdicts, for Prometheus (job ``infersight-api``)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def open_store(url: str, migrate: bool) -> Engine:
    """The store's engine for reading, migrated first when configured, else checked to be current."""
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    else:
        require_current(engine)
    return engine


def mount_query_api(app: FastAPI, settings: Settings) -> None:
    """Serve ``/v1/...`` and the web UI from ``app`` too (the ingest does when ``api.enabled``)."""
    engine = open_store(settings.store.url, settings.store.migrate_on_start)
    app.include_router(query_router(engine, settings.api))
    add_error_handlers(app)
    add_ui(app)
