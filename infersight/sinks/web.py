"""What browsers get: Swagger UI at ``/docs`` and the web UI at ``/ui``, from files in the package.

Both work offline: ``ui/`` (npm) builds the UI and copies Swagger UI's files into ``static/``,
which ships inside the package. The pages hold no data; the UI reads ``/v1/...`` with the user's
bearer token, so it is as closed as the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def add_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI over the app's OpenAPI document, its scripts served from ``/static``.

    The app must be made with ``docs_url=None, redoc_url=None`` (FastAPI's own pages use a CDN).
    The document leaves out the 422 FastAPI lists on every route: malformed parameters get 400.
    """
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = plain_openapi()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="static/swagger-ui-bundle.js",
            swagger_css_url="static/swagger-ui.css",
            swagger_favicon_url="static/favicon-32x32.png",
        )


def add_ui(app: FastAPI) -> None:
    """``/ui/``: the web UI's page (its scripts from ``/static``); ``/ui`` redirects there."""

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("ui/")

    @app.get("/ui/", include_in_schema=False)
    def ui_page() -> FileResponse:
        return FileResponse(STATIC / "ui.html", media_type="text/html")
