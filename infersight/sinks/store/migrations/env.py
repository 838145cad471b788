"""Alembic environment: runs on the connection the caller hands over (see ``store.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from infersight.sinks.store.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through infersight.sinks.store.migrate (infersight db upgrade)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use infersight db upgrade")
run_migrations_online()
