"""Column types that behave the same on SQLite and PostgreSQL, and values as their drivers take them.

The writer hands its rows to the driver itself (see ``writer``): :func:`json_text` is what the JSON
columns get on both dialects (it is also the engine's JSON serialiser, so that every path writes the
same text), :func:`sqlite_time` what a :class:`UtcDateTime` column gets on SQLite.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

#: A JSON ``\u0000`` escape, not preceded by a backslash that escapes its own backslash.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
#: The integers orjson writes; JSON readers (orjson among them) read any other as a float.
_INT64 = (-(2**63), 2**64 - 1)


def _float_or_null(value: int) -> float | None:
    try:
        return float(value)
    except OverflowError:  # past a double's range: written as null, like an infinity
        return None


def _wide_ints_as_floats(value: Any) -> Any:
    """``value`` with integers orjson cannot write as floats (what reading the text back gives)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else _float_or_null(value)
    if isinstance(value, dict):
        return {key: _wide_ints_as_floats(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_ints_as_floats(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """``value`` as the JSON text a JSON or JSONB column takes (None is the JSON ``null``).

    NaN and infinities become null: PostgreSQL's jsonb refuses them and JSON has no spelling for
    them. jsonb refuses NUL in strings too, and one such value would fail its batch on every
    retry: it is stored as U+FFFD (the raw body keeps the original bytes). An integer past 64
    bits (a hostile body's) is written as the float any JSON reader would make of it.
    """
    try:
        data = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError as exc:
        if "Integer exceeds 64-bit range" not in str(exc):
            raise
        data = orjson.dumps(_wide_ints_as_floats(value), option=orjson.OPT_SERIALIZE_NUMPY)
    text = data.decode()
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def sqlite_time(value: datetime) -> str:
    """An aware time as SQLite's DATETIME column holds it, as SQLAlchemy writes it: UTC, no zone.

    Always with microseconds (``2025-03-01 12:00:00.000000``), so that stored times compare as text.
    """
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC time")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out: SQLite keeps no zone, so naive values read back are UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is SQL NULL, not the JSON ``null``."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
