"""The attribute rules the ingest holds events to give the cloudevents SDK's verdict on every event."""

from __future__ import annotations

from typing import Any

import pytest
from cloudevents.core.bindings.common import get_event_factory_for_version
from cloudevents.core.exceptions import BaseCloudEventException
from hypothesis import given, settings
from hypothesis import strategies as st

from infersight.eventformat import InvalidEvent, validate_attributes
from infersight.times import parse_time

KSERVE = {
    "specversion": "1.0",
    "id": "5b3d-1",
    "source": "http://localhost:9081/",
    "type": "org.kubeflow.serving.inference.request",
    "time": "2026-11-25T10:15:30.123456789Z",
    "inferenceservicename": "iris",
    "namespace": "models",
    "endpoint": "",
    "datacontenttype": "application/json",
}
NAMES = [
    *KSERVE,
    "subject",
    "dataschema",
    "schemaurl",
    "datacontentencoding",
    "data",
    "component",
    "Upper",
    "with-dash",
    "x" * 30,
]
VALUES = ["", "v", "urn:a", "1.0", "0.3", "2.0", "2026-11-25T10:15:30Z", "2026-11-25T10:15:30", "a\x00b"]


def sdk_accepts(attributes: dict[str, str]) -> bool:
    """The SDK's verdict: its event class for the spec version, given ``time`` as it takes it."""
    if any(character in value for value in attributes.values() for character in "\x00\x1f\x7f"):
        return False  # CloudEvents forbids control characters; the SDK does not look
    candidate: dict[str, Any] = dict(attributes)
    if "time" in candidate:
        try:
            candidate["time"] = parse_time(candidate["time"], strict=True)
        except ValueError:
            return False
    if not all(candidate.get(name) for name in ("id", "specversion")):
        return False  # the SDK invents a missing id and specversion
    try:
        get_event_factory_for_version(candidate["specversion"])(candidate, None)
    except BaseCloudEventException:
        return False
    return True


def accepts(attributes: dict[str, str]) -> bool:
    try:
        validate_attributes(attributes)
    except InvalidEvent:
        return False
    return True


@settings(max_examples=2000, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=4),
    dropped=st.sets(st.sampled_from(list(KSERVE)), max_size=2),
)
def test_the_verdict_is_the_sdks(changes: dict[str, str], dropped: set[str]) -> None:
    attributes = {name: value for name, value in {**KSERVE, **changes}.items() if name not in dropped}
    assert accepts(attributes) == sdk_accepts(attributes), attributes


@pytest.mark.parametrize(
    ("specversion", "name"),
    [("1.0", "subject"), ("1.0", "dataschema"), ("0.3", "schemaurl"), ("0.3", "datacontentencoding")],
)
def test_an_empty_optional_attribute_is_named(specversion: str, name: str) -> None:
    with pytest.raises(InvalidEvent, match=f"attribute '{name}' must not be empty"):
        validate_attributes({**KSERVE, "specversion": specversion, name: ""})


def test_an_empty_extension_is_kept() -> None:
    """KServe sends ``Ce-Endpoint`` empty in real clusters."""
    validate_attributes({**KSERVE, "endpoint": ""})
