"""Alembic migrations run from the package itself: no ``alembic.ini`` next to the user's data."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from infersight.sinks.store.engine import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: PostgreSQL advisory lock id held while migrating ("isgt").
MIGRATION_LOCK = 0x69736774


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The revision this version of infersight expects."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None before the first ``infersight db upgrade``."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` in one transaction per step; a no-op when current."""
    config = _config()
    with engine.begin() as connection:
        _hold_migration_lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _hold_migration_lock(connection: Connection) -> None:
    """Workers started together migrate one after the other; the later ones find nothing to do.

    The lock lasts until the transaction ends: an advisory lock on PostgreSQL, SQLite's write
    lock (taken up front by ``BEGIN IMMEDIATE``; the others wait out ``busy_timeout``).
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def require_current(engine: Engine) -> None:
    """Refuse to read or write a database whose schema is not the one this code was written for."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        found = f"at revision {current}" if current else "not initialised"
        where = engine.url.render_as_string()
        raise StoreError(f"the store at {where} is {found}, expected {head}: run `infersight db upgrade`")
