"""``INSERT ... ON CONFLICT`` for the two dialects the store runs on; both spell it the same way."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert(table: Table, dialect: str) -> postgresql.Insert | sqlite.Insert:
    """An insert that can say what to do with a row that is already there."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the store runs on sqlite or postgresql, not {dialect}")
