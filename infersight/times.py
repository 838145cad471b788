"""The one place that reads and writes times: CloudEvent ``time``, query filters, cursors, reports.

What is read, by :func:`parse_time`:

* ``strict=False`` (the default): RFC 3339 and the ISO 8601 extended forms people type. A date
  (``2025-03-01``, midnight), optionally a time after ``T``, ``t`` or a space, with minutes, seconds
  and a fraction optional (``12:00``, ``12:00:00``, ``12:00:00.123456789``; ``.`` or ``,``), then
  optionally a zone: ``Z``/``z``, ``+HH:MM``, ``+HHMM`` or ``+HH``.
* ``strict=True``: exactly RFC 3339 (section 5.6), for what machines send: seconds and a zone
  (``Z``/``z`` or ``+HH:MM``) are required, the fraction uses ``.``.

**A time without a zone is UTC**: the only rule for zone-less times in the package, applied here
and nowhere else (the strict form has no zone-less times to interpret). Never the host's local
zone, so a worker reads the same instant on every machine.

A fraction may have any number of digits (the KServe agent writes nanoseconds); digits past the
microsecond are dropped, as Python's datetime cannot hold them. Leap seconds (``:60``) and
``24:00`` are refused, as datetime cannot hold them either. Every time comes back aware, in UTC;
anything else raises :class:`ValueError` with the text and what is wrong with it.

What people type as a filter, by :func:`parse_moment`: such a time, or an age back from now
(``90s``, ``15m``, ``2h``, ``7d``), the same in the CLI and the query API.

What is written, by :func:`format_time`: RFC 3339 in UTC with ``Z``, microseconds when not zero.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

__all__ = ["format_time", "parse_moment", "parse_time", "to_unix"]

_LENIENT: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
    r"(?:[Tt ](?P<hour>\d\d)(?::(?P<minute>\d\d)(?::(?P<second>\d\d)(?:[.,](?P<fraction>\d+))?)?)?"
    r"(?P<zone>[Zz]|(?P<sign>[+-])(?P<zone_hour>\d\d)(?::?(?P<zone_minute>\d\d))?)?)?",
    re.ASCII,
)
_STRICT: Final = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d\d)-(?P<day>\d\d)"
    r"[Tt ](?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|(?P<sign>[+-])(?P<zone_hour>\d\d):(?P<zone_minute>\d\d))",
    re.ASCII,
)
_AGE: Final = re.compile(r"(\d+(?:\.\d+)?)([smhd])", re.ASCII)
_AGE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EXPECTED: Final = {
    False: "an RFC 3339 / ISO 8601 time such as 2025-03-01T12:00:00Z",
    True: "an RFC 3339 time with seconds and a zone, such as 2025-03-01T12:00:00Z",
}


def parse_time(text: str, *, strict: bool = False) -> datetime:
    """``text`` as an aware datetime in UTC; a time without a zone is UTC (see the module's notes).

    Raises :class:`ValueError` when ``text`` is not such a time, names a day or hour that does not
    exist, or lies so near the ends of datetime's range that it has no UTC equivalent.

    A worker reads each event's ``time`` three times (checking the event, its lag, its row): the
    latest texts are remembered, so that the last two are lookups.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected {_EXPECTED[strict]}, got {text!r}")
    if not strict:
        # What the strict form takes reads the same leniently; the worker checked each event's
        # time strictly, so the store's lenient reading of it is a lookup too.
        try:
            return _parse(text, True)
        except ValueError:
            pass
    return _parse(text, strict)


@functools.lru_cache(maxsize=8192)
def _parse(text: str, strict: bool) -> datetime:
    match = (_STRICT if strict else _LENIENT).fullmatch(text)
    if match is None:
        raise ValueError(f"expected {_EXPECTED[strict]}, got {text!r}")
    if match["hour"] != "24" and match["second"] != "60" and (match["zone_minute"] or "0") < "60":
        # The common case, in C: what the pattern let through, fromisoformat reads the same way.
        try:
            fast = datetime.fromisoformat(text)
            return (fast if fast.tzinfo is not None else fast.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # the reading below says what is wrong
    part = match.groupdict()
    try:
        when = datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int((part["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(part),
        )
        return when.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(
            f"{text!r} has no UTC equivalent: it falls outside the years 1 to 9999 in UTC"
        ) from exc
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from exc


def _zone(part: dict[str, str | None]) -> timezone:
    if part["sign"] is None:  # Z, or no zone at all: UTC
        return UTC
    hours, minutes = int(part["zone_hour"] or 0), int(part["zone_minute"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"the offset {hours:02}:{minutes:02} is not between -23:59 and +23:59")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if part["sign"] == "-" else offset)


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """A filter's time: :func:`parse_time` (lenient), or an age back from ``now`` such as ``15m``.

    Raises :class:`ValueError` naming both forms when ``text`` is neither.
    """
    stripped = text.strip() if isinstance(text, str) else text
    if isinstance(stripped, str) and (age := _AGE.fullmatch(stripped)):
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=float(age[1]) * _AGE_UNITS[age[2]])
        except OverflowError:
            raise ValueError(f"the age {text!r} reaches before the year 1") from None
    try:
        return parse_time(stripped)
    except ValueError as exc:
        raise ValueError(
            f"expected a time such as 2025-03-01T12:00:00Z or an age such as 15m, got {text!r}"
        ) from exc


def to_unix(text: str, *, strict: bool = False) -> float:
    """``text`` as seconds since the Unix epoch, read as :func:`parse_time` reads it.

    Remembered like :func:`parse_time`'s readings: a worker asks this for each event's lag.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected {_EXPECTED[strict]}, got {text!r}")
    return _unix(text, strict)


@functools.lru_cache(maxsize=8192)
def _unix(text: str, strict: bool) -> float:
    return parse_time(text, strict=strict).timestamp()


def format_time(when: datetime | float) -> str:
    """RFC 3339 in UTC with ``Z``: a datetime (one without a zone is UTC) or Unix seconds.

    Microseconds are written when not zero. Raises :class:`ValueError` for seconds that are not
    finite or lie outside datetime's range.
    """
    if not isinstance(when, datetime):
        if not math.isfinite(when):
            raise ValueError(f"cannot write {when!r} seconds as a time")
        try:
            when = datetime.fromtimestamp(when, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"cannot write {when!r} seconds as a time: {exc}") from exc
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    else:
        try:
            when = when.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError(f"{when!r} has no UTC equivalent") from exc
    return when.isoformat().replace("+00:00", "Z")
