"""Opaque keyset cursors: the sort key of the last row of a page, so the next page starts after it."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_

from infersight.sinks.store.filters import QueryError
from infersight.times import format_time, parse_time


def encode(time: datetime, row_id: int | str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([format_time(time), row_id])).decode().rstrip("=")


_INVALID = "invalid cursor: pass back the next_cursor of the previous page"
_BIGINT = range(-(2**63), 2**63)


def decode(cursor: str) -> tuple[datetime, Any]:
    """The ``(time, id)`` a cursor holds; raises :class:`QueryError` for anything not made by ``encode``.

    The time comes back in UTC: ``encode`` writes the store's aware UTC times, and a forged cursor
    with no zone, or with a time that has no UTC equivalent, is refused here rather than by the store.
    """
    try:
        time_text, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return parse_time(time_text, strict=True), row_id  # strict: a cursor's time names its zone
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise QueryError(_INVALID) from exc


def after(time_column: Any, id_column: Any, cursor: str) -> Any:
    """Rows after the cursor in newest-first order (``time DESC, id DESC``).

    The id must be of the id column's own type (and an integer one fit in 64 bits): the database
    would refuse anything else with an error of its own, not a 400.
    """
    time, row_id = decode(cursor)
    kind = id_column.type.python_type
    if (
        type(row_id) is not kind
        or (kind is int and row_id not in _BIGINT)
        or (kind is str and "\x00" in row_id)
    ):
        raise QueryError(_INVALID)
    return or_(time_column < time, and_(time_column == time, id_column < row_id))
