"""Opaque keyset cursors: the sort key of the last row of a page, so the next page starts after it."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_

from infersight.sinks.store.filters import QueryError


def encode(time: datetime, row_id: int | str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([time.isoformat(), row_id])).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, Any]:
    """The ``(time, id)`` a cursor holds; raises :class:`QueryError` for anything not made by ``encode``."""
    try:
        time_text, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(time_text), row_id
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise QueryError("invalid cursor: pass back the next_cursor of the previous page") from exc


def after(time_column: Any, id_column: Any, cursor: str) -> Any:
    """Rows after the cursor in newest-first order (``time DESC, id DESC``)."""
    time, row_id = decode(cursor)
    if not isinstance(row_id, int | str) or isinstance(row_id, bool):
        raise QueryError("invalid cursor: pass back the next_cursor of the previous page")
    return or_(time_column < time, and_(time_column == time, id_column < row_id))
