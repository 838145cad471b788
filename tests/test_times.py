"""The one time parser and writer: RFC 3339 in, aware UTC out; zone-less times are UTC."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from infersight.cli.context import CliError
from infersight.cli.storeargs import parse_time as cli_time
from infersight.detectors.features import event_time as detector_time
from infersight.eventformat import InvalidEvent, validate_attributes
from infersight.records import Half, InferenceRecord, ModelRef, Payload, RawEvent
from infersight.sinks.store.feedback import event_time as store_time
from infersight.times import format_time, parse_time, to_unix

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00Z", NOON),
        ("2025-03-01t12:00:00z", NOON),  # RFC 3339 allows lower case
        ("2025-03-01 12:00:00Z", NOON),
        ("2025-03-01T14:00:00+02:00", NOON),
        ("2025-03-01T06:30:00-05:30", NOON),
        ("2025-03-01T12:00:00-00:00", NOON),
        ("2025-03-01T12:00:00+00:00", NOON),
        ("2025-03-01T12:00:00.5Z", NOON + timedelta(milliseconds=500)),
        ("2025-03-01T12:00:00.123456Z", NOON + timedelta(microseconds=123456)),
        # Nanoseconds, as the KServe agent writes them: digits past the microsecond are dropped.
        ("2025-03-01T12:00:00.123456789Z", NOON + timedelta(microseconds=123456)),
        ("2025-03-01T12:00:00.000000999Z", NOON),
        ("2025-03-01T14:00:00.999999999999+02:00", NOON + timedelta(microseconds=999999)),
        ("2024-02-29T23:59:59Z", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
        ("2025-03-02T00:30:00+12:30", NOON),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_rfc3339_times(text: str, expected: datetime) -> None:
    for strict in (False, True):
        parsed = parse_time(text, strict=strict)
        assert parsed == expected
        assert parsed.tzinfo is UTC  # always aware, always UTC
        assert parsed.utcoffset() == timedelta(0)


def test_offsets_name_the_same_instant() -> None:
    times = {parse_time(text) for text in ("2025-03-01T14:00:00+02:00", "2025-03-01T12:00:00Z")}
    assert times == {NOON}
    assert to_unix("2025-03-01T14:00:00+02:00") == to_unix("2025-03-01T12:00:00Z") == NOON.timestamp()


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The host in a zone far from UTC: zone-less times must still be read as UTC, not local time."""
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"  # UTC+14
    time.tzset()
    try:
        if datetime(2025, 3, 1, 12).astimezone().utcoffset() != timedelta(hours=14):
            pytest.skip("no zone data for Pacific/Kiritimati")
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_a_time_without_a_zone_is_utc_whatever_the_host_zone() -> None:
    assert parse_time("2025-03-01T12:00:00") == NOON
    assert parse_time("2025-03-01T12:00:00.123456789") == NOON + timedelta(microseconds=123456)
    assert to_unix("2025-03-01T12:00:00") == NOON.timestamp() == 1740830400.0
    assert format_time(datetime(2025, 3, 1, 12, 0)) == "2025-03-01T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00Z", NOON),  # what the CLI's --help shows
        ("2025-03-01T12Z", NOON),
        ("2025-03-01T12:00", NOON),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),  # midnight, UTC
        ("2025-03-01T12:00:00,5Z", NOON + timedelta(milliseconds=500)),
        ("2025-03-01T14:00:00+0200", NOON),
        ("2025-03-01T14:00:00+02", NOON),
    ],
)
def test_lenient_forms_people_type(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected
    with pytest.raises(ValueError, match="RFC 3339 time with seconds and a zone"):
        parse_time(text, strict=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "last week",
        "1740830400",  # Unix seconds are not a time text
        "0.0",
        "2025-03-01T12:00:00ZZ",
        "2025-03-01T12:00:00 Z",
        " 2025-03-01T12:00:00Z",
        "2025-03-01T12:00:00Z ",
        "2025-03-01T12:00:00.Z",
        "2025-3-1T12:00:00Z",
        "20250301T120000Z",  # ISO 8601 basic format: not RFC 3339
        "2025-W09-6T12:00:00Z",
        "2025-03-01T12:00:00+02:00:30",
        "2025-03-01Z",
        "2025-03-01T12:00:00+2:00",
        "\uff12\uff10\uff12\uff15-03-01T12:00:00Z",  # fullwidth digits
    ],
)
def test_garbage_is_a_value_error(text: str) -> None:
    for strict in (False, True):
        with pytest.raises(ValueError, match=r"expected an RFC 3339 .*, got "):
            parse_time(text, strict=strict)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2025-13-01T12:00:00Z", "month must be in 1..12"),
        ("2025-02-30T12:00:00Z", "day is out of range for month"),
        ("2025-03-01T24:00:00Z", "hour must be in 0..23"),
        ("2025-03-01T12:60:00Z", "minute must be in 0..59"),
        ("2016-12-31T23:59:60Z", "second must be in 0..59"),  # leap seconds: datetime has none
        ("2025-03-01T12:00:00+24:00", r"the offset 24:00 is not between -23:59 and \+23:59"),
        ("2025-03-01T12:00:00+05:60", r"the offset 05:60 is not between"),
        ("0000-01-01T00:00:00Z", "year 0 is out of range"),
    ],
)
def test_impossible_times_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"'{text[:4]}.*' is not a valid time: {message}"):
        parse_time(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_with_no_utc_equivalent_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="has no UTC equivalent"):
        parse_time(text)


def test_what_is_not_text_is_a_value_error() -> None:
    for value in (None, 1740830400, b"2025-03-01T12:00:00Z"):
        with pytest.raises(ValueError, match="expected an RFC 3339"):
            parse_time(value)  # type: ignore[arg-type]


def test_to_unix() -> None:
    assert to_unix("1970-01-01T00:00:00Z") == 0.0
    assert to_unix("1970-01-01T01:00:00+01:00") == 0.0
    assert to_unix("2025-03-01T12:00:00.25Z") == 1740830400.25
    assert to_unix("2025-03-01T12:00:00.123456789Z") == pytest.approx(1740830400.123456, abs=1e-6)
    with pytest.raises(ValueError, match="got 'soon'"):
        to_unix("soon")
    with pytest.raises(ValueError, match="seconds and a zone"):
        to_unix("2025-03-01T12:00:00", strict=True)


def test_format_time() -> None:
    assert format_time(NOON) == "2025-03-01T12:00:00Z"
    assert format_time(NOON + timedelta(microseconds=5)) == "2025-03-01T12:00:00.000005Z"
    assert (
        format_time(datetime(2025, 3, 1, 14, tzinfo=timezone(timedelta(hours=2)))) == "2025-03-01T12:00:00Z"
    )
    assert format_time(datetime(2025, 3, 1, 12)) == "2025-03-01T12:00:00Z"  # zone-less is UTC
    assert format_time(1740830400) == "2025-03-01T12:00:00Z"
    assert format_time(1740830400.5) == "2025-03-01T12:00:00.500000Z"
    assert format_time(0.0) == "1970-01-01T00:00:00Z"
    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize("seconds", [math.nan, math.inf, -math.inf, 1e20])
def test_format_time_refuses_seconds_that_are_no_time(seconds: float) -> None:
    with pytest.raises(ValueError, match="cannot write"):
        format_time(seconds)


def test_format_time_refuses_a_datetime_with_no_utc_equivalent() -> None:
    with pytest.raises(ValueError, match="no UTC equivalent"):
        format_time(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


@pytest.mark.parametrize(
    "when",
    [
        NOON,
        NOON + timedelta(microseconds=123456),
        NOON + timedelta(microseconds=1),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 3, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_round_trip(when: datetime) -> None:
    text = format_time(when)
    assert text.endswith("Z")
    assert parse_time(text, strict=True) == when
    assert format_time(parse_time(text)) == text


def test_round_trip_through_unix_seconds() -> None:
    for text in ("2025-03-01T12:00:00Z", "2025-03-01T12:00:00.5Z", "1999-12-31T23:59:59.000001Z"):
        assert format_time(to_unix(text)) == text.replace(".5Z", ".500000Z")


# Every reader in the package agrees, because they all read through parse_time.

ATTRIBUTES = {
    "specversion": "1.0",
    "id": "r-1",
    "source": "urn:test",
    "type": "org.kubeflow.serving.inference.request",
}


def record_at(text: str) -> InferenceRecord:
    event = RawEvent(attributes={**ATTRIBUTES, "time": text}, data=b"{}")
    half = Half(event=event, payload=Payload("raw"), received_at=-1.0)
    return InferenceRecord(request_id="r-1", model=ModelRef.from_attributes({}), request=half, response=None)


@pytest.mark.usefixtures("far_from_utc")
@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01T12:00:00",  # zone-less: UTC everywhere, never the host's zone
        "2025-03-01t12:00:00z",  # lower case: fromisoformat refused it, so some readers ignored it
        "2025-03-01T14:00:00.000000999+02:00",
    ],
)
def test_detectors_store_and_cli_read_the_same_instant(text: str) -> None:
    assert detector_time(record_at(text)) == NOON.timestamp()
    fallback = datetime(2000, 1, 1, tzinfo=UTC)
    assert store_time({"time": text}, fallback) == NOON
    assert cli_time(text, "--since") == NOON


def test_unreadable_event_times_fall_back() -> None:
    fallback = datetime(2000, 1, 1, tzinfo=UTC)
    for text in ("garbage", "0001-01-01T00:00:00+01:00"):  # the second once escaped as OverflowError
        assert store_time({"time": text}, fallback) == fallback
        assert detector_time(record_at(text)) == -1.0  # when the half was received
    with pytest.raises(
        CliError, match="--until: expected a time such as 2025-03-01T12:00:00Z or an age such as 15m"
    ):
        cli_time("0001-01-01T00:00:00+01:00", "--until")


def test_cloudevents_take_rfc3339_times_only() -> None:
    for text in ("2025-03-01T12:00:00Z", "2025-03-01t12:00:00.123456789z", "2025-03-01T14:00:00+02:00"):
        validate_attributes({**ATTRIBUTES, "time": text})
    for text in ("2025-03-01T12:00:00", "2025-03-01T12:00Z", "2026-13-45", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(InvalidEvent, match="attribute 'time' is not an RFC 3339 timestamp"):
            validate_attributes({**ATTRIBUTES, "time": text})


def test_filters_take_a_time_or_an_age_back_from_now() -> None:
    from infersight.times import parse_moment

    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_moment("15m", now=now) == datetime(2025, 3, 1, 11, 45, tzinfo=UTC)
    assert parse_moment(" 1.5h ", now=now) == datetime(2025, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_moment("7d", now=now) == datetime(2025, 2, 22, 12, 0, tzinfo=UTC)
    assert parse_moment("2025-03-01T12:00", now=now) == now
    for text in ("15", "0.0", "15 m", "-5m", "99999999d", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValueError, match=r"expected a time such as .* or an age|reaches before"):
            parse_moment(text, now=now)
