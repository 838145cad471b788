"""One way to open the store's database, so that every caller gets the same driver and settings."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from infersight.sinks.store.types import json_text


class StoreError(Exception):
    """The store cannot be used as configured; the message says why in one line."""


def _unjson(value: Any) -> Any:
    # SQLite gives a column declared JSON numeric affinity: the text ``1`` comes back as the integer 1.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers (query, export, the API) work while a worker writes; waits instead of failing."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def driver_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) use psycopg 3, the driver the project installs."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"store.url is not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"store.url must be sqlite:/// or postgresql://, not {parsed.drivername}://")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///...`` or ``postgresql://...`` with orjson for JSON columns."""
    target = driver_url(url)
    # pre-ping: a PostgreSQL restart must not fail the next batch with a dead pooled connection.
    engine = create_engine(
        target,
        json_serializer=json_text,
        json_deserializer=_unjson,
        pool_pre_ping=not target.startswith("sqlite"),
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine
