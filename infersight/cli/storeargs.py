"""What ``query``, ``export``, ``api`` and ``db`` share: the store option, filters, one-line errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infersight import times
from infersight.cli.context import CliError, settings_of

if TYPE_CHECKING:
    from sqlalchemy import Engine

Store = Annotated[
    str | None, typer.Option("--store", "-s", help="Store URL (store.url), e.g. postgresql://user@host/db.")
]
Namespace = Annotated[str | None, typer.Option("--namespace", "-n", help="Only this namespace.")]
Model = Annotated[str | None, typer.Option("--model", "-m", help="Only this InferenceService.")]
Endpoint = Annotated[
    str | None, typer.Option("--endpoint", "-e", help="Only this endpoint (default, canary).")
]
Component = Annotated[
    str | None,
    typer.Option("--component", help="Only this KServe component (predictor, transformer, explainer)."),
]
Since = Annotated[
    str | None, typer.Option(help="From this time: RFC 3339 (2025-03-01T12:00Z) or an age (15m, 2h, 7d).")
]
Until = Annotated[str | None, typer.Option(help="Before this time, same forms as --since.")]
Labelled = Annotated[
    bool | None, typer.Option("--labelled/--unlabelled", help="Only inferences with (or without) a label.")
]
InDrift = Annotated[
    bool | None,
    typer.Option("--in-drift/--outside-drift", help="Only inferences inside (outside) a window with drift."),
]
DetectionId = Annotated[
    str | None, typer.Option("--detection", help="Only inferences in this detection's window.")
]


def parse_time(text: str | None, option: str) -> datetime | None:
    """An RFC 3339 time (UTC when it names no zone) or an age back from now (:func:`times.parse_moment`)."""
    if text is None:
        return None
    try:
        return times.parse_moment(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from exc


def store_url(ctx: typer.Context, override: str | None) -> str:
    return override or settings_of(ctx).store.url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Database and store errors as one line: the driver's first line, not a traceback."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from infersight.sinks.store import StoreError
    from infersight.sinks.store.filters import QueryError

    try:
        yield
    except (StoreError, QueryError) as exc:
        raise CliError(str(exc)) from exc
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        raise CliError(f"database error: {first}") from exc
    except SQLAlchemyError as exc:
        raise CliError(f"database error: {str(exc).splitlines()[0]}") from exc


def open_for_reading(url: str) -> Engine:
    """The store's engine for reading; refuses a store that does not exist or is not migrated."""
    from infersight.sinks.store import make_engine
    from infersight.sinks.store.migrate import require_current

    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise CliError(f"no store at {path} (a worker creates it; or run `infersight db upgrade`)")
    with store_errors():
        engine = make_engine(url)
        require_current(engine)
    return engine
