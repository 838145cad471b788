"""Column types that behave the same on SQLite and PostgreSQL, and values as their drivers take them.

The writer hands its rows to the driver itself (see ``writer``): :func:`json_text` is what the JSON
columns get on both dialects (it is also the engine's JSON serialiser, so that every path writes the
same text), :func:`sqlite_time` what a :class:`UtcDateTime` column gets on SQLite, and
:func:`sqlite_event_time` and :func:`sqlite_seconds` the same text made with less work from what a
row's times come from (the CloudEvent ``time`` text, the Unix seconds a half was received at).
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
_dumps = orjson.dumps
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
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


def json_bytes(value: Any) -> bytes:
    """orjson's JSON of ``value``, an integer past 64 bits (a hostile body's) written as a float.

    As the float any JSON reader (orjson among them) would make of it; past a double's range, null.
    """
    try:
        return _dumps(value, option=_NUMPY)
    except orjson.JSONEncodeError as exc:
        if "Integer exceeds 64-bit range" not in str(exc):
            raise
        return _dumps(_wide_ints_as_floats(value), option=_NUMPY)


def json_column_text(data: bytes) -> str:
    """JSON text as a JSON or JSONB column takes it: NUL in strings (jsonb refuses them) as U+FFFD."""
    text = data.decode()
    return text if "\\u0000" not in text else _NUL_ESCAPE.sub(r"\1\\ufffd", text)


def json_text(value: Any) -> str:
    """``value`` as the JSON text a JSON or JSONB column takes (None is the JSON ``null``).

    NaN and infinities become null: PostgreSQL's jsonb refuses them and JSON has no spelling for
    them. jsonb refuses NUL in strings too, and one such value would fail its batch on every
    retry: it is stored as U+FFFD (the raw body keeps the original bytes). An integer past 64
    bits is written as a float (:func:`json_bytes`).
    """
    try:
        text = _dumps(value, option=_NUMPY).decode()
    except orjson.JSONEncodeError:
        text = json_bytes(value).decode()
    return text if "\\u0000" not in text else _NUL_ESCAPE.sub(r"\1\\ufffd", text)


#: ``YYYY-MM-DD HH:MM`` by the fields of the datetime it starts.
_MINUTES: dict[tuple[int, ...], str] = {}
_MINUTES_KEPT = 4096
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
#: ``YYYY-MM-DD HH:MM:SS.`` by the Unix second it starts.
_SECONDS: dict[int, str] = {}
#: Unix seconds in the years 1970 to 9999, where the seconds cache serves :func:`sqlite_seconds`.
_FIRST_SECOND, _LAST_SECOND = 0.0, 253402300800.0


def _minute(key: tuple[int, ...], start: datetime) -> str:
    if len(_MINUTES) >= _MINUTES_KEPT:
        _MINUTES.clear()
    text = _MINUTES[key] = start.isoformat(" ", "minutes")[:16]
    return text


def sqlite_time(value: datetime) -> str:
    """An aware time as SQLite's DATETIME column holds it, as SQLAlchemy writes it: UTC, no zone.

    Always with microseconds (``2025-03-01 12:00:00.000000``), so that stored times compare as text.
    """
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC time")
        value = value.astimezone(UTC)
    key = (value.year, value.month, value.day, value.hour, value.minute)
    minute = _MINUTES.get(key)
    if minute is None:
        minute = _minute(key, value)
    return f"{minute}:{_TWO_DIGITS[value.second]}.{value.microsecond:06d}"


def sqlite_event_time(value: datetime, text: str | None) -> str:
    """:func:`sqlite_time` of a time read by ``times.parse_time`` from ``text`` (None: not read from text).

    An RFC 3339 UTC text as machines write it (``2025-03-01T12:00:00.123456789Z``) already spells
    it: the time's fields are the text's, digits past the microsecond dropped as the parser drops
    them. Any other text goes through ``value``.
    """
    if text is not None and len(text) >= 20 and text[-1] in "Zz" and text[10] == "T":
        if len(text) >= 27 and text[19] == ".":  # microseconds or more (the parser drops the rest)
            return text[:26].replace("T", " ", 1)
        if len(text) == 20:
            return text[:10] + " " + text[11:19] + ".000000"
        if text[19] == ".":  # fewer digits: the parser took them all
            return text[:10] + " " + text[11:-1].ljust(15, "0")
    return sqlite_time(value)


def _new_second(whole: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.`` of a Unix second not in the cache yet, kept for the next."""
    if len(_SECONDS) >= _MINUTES_KEPT:
        _SECONDS.clear()
    text = _SECONDS[whole] = sqlite_time(datetime.fromtimestamp(whole, UTC))[:20]
    return text


def sqlite_seconds(seconds: float) -> str:
    """``sqlite_time(datetime.fromtimestamp(seconds, UTC))``, without making the datetime.

    The microseconds rounded as ``fromtimestamp`` rounds them: the fraction, half to even.
    """
    if not _FIRST_SECOND <= seconds < _LAST_SECOND:
        return sqlite_time(datetime.fromtimestamp(seconds, UTC))
    whole = int(seconds)
    micro = round((seconds - whole) * 1e6)  # the fraction is exact: seconds - whole loses no bits
    if micro == 1_000_000:  # rounded up into the next second
        return sqlite_time(datetime.fromtimestamp(seconds, UTC))
    second = _SECONDS.get(whole)
    if second is None:
        second = _new_second(whole)
    return second + str(micro + 1_000_000)[1:]


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
