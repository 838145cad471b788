"""Parsing HTTP requests into events, without a broker: what is kept, what is refused."""

from __future__ import annotations

import gzip
import json

import pytest

from infersight.binding import to_kafka_headers
from infersight.eventformat import BODY_ERROR, BODY_ERROR_LENGTH
from infersight.ingest.errors import IngestError
from infersight.ingest.parsing import parse_request
from infersight.records import ModelRef

LIMIT = 1 << 20


def binary_headers(**extra: str) -> dict[str, str]:
    return {
        "ce-specversion": "1.0",
        "ce-id": "5b3d-1",
        "ce-source": "http://localhost:9081/",
        "ce-type": "org.kubeflow.serving.inference.request",
        "ce-time": "2026-11-25T10:15:30.123456789Z",
        "ce-inferenceservicename": "iris",
        "ce-namespace": "models",
        "ce-endpoint": "",
        "content-type": "application/json",
        "content-length": "12",
        **extra,
    }


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in binary_headers().items() if key != name}


def test_binary_keeps_attributes_and_body_exactly() -> None:
    body = b'{"instances":  [[1.0, 2.50]]}'
    (event,) = parse_request(binary_headers(**{"ce-metadata": '{"A": ["b c"]}'}), body, LIMIT)
    assert event.data is body
    assert event.attributes == {
        "specversion": "1.0",
        "id": "5b3d-1",
        "source": "http://localhost:9081/",
        "type": "org.kubeflow.serving.inference.request",
        "time": "2026-11-25T10:15:30.123456789Z",
        "inferenceservicename": "iris",
        "namespace": "models",
        "endpoint": "",
        "metadata": '{"A": ["b c"]}',
        "datacontenttype": "application/json",
    }
    assert event.model == ModelRef("models", "iris", "")
    assert event.model.partition_key == "models/iris"


def test_kafka_headers_follow_the_binding() -> None:
    (event,) = parse_request(binary_headers(), b"{}", LIMIT)
    headers = dict(to_kafka_headers(event.attributes, "gzip"))
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"] == b"2026-11-25T10:15:30.123456789Z"
    assert headers["ce_endpoint"] == b""
    assert headers["content-encoding"] == b"gzip"
    assert "ce_datacontenttype" not in headers


def test_seldon_model_identity_falls_back_to_modelid() -> None:
    headers = binary_headers(**{"ce-modelid": "classifier"})
    del headers["ce-inferenceservicename"]
    (event,) = parse_request(headers, b"{}", LIMIT)
    assert event.model.partition_key == "models/classifier"


def test_nan_in_a_model_response_is_accepted() -> None:
    (event,) = parse_request(binary_headers(), b'{"predictions": [NaN, Infinity]}', LIMIT)
    assert event.data == b'{"predictions": [NaN, Infinity]}'


def test_gzip_kept_compressed() -> None:
    body = gzip.compress(b'{"data": {"ndarray": [[1]]}}')
    (event,) = parse_request(binary_headers(**{"content-encoding": "gzip"}), body, LIMIT)
    assert event.data == body
    assert event.content_encoding == "gzip"


def test_structured_attributes_are_texts() -> None:
    envelope = {
        "specversion": "1.0",
        "id": "1",
        "source": "s",
        "type": "t",
        "n": 7,
        "flag": False,
        "data": [1, 2],
    }
    headers = {"content-type": "application/cloudevents+json; charset=utf-8"}
    (event,) = parse_request(headers, json.dumps(envelope).encode(), LIMIT)
    assert event.attributes == {
        "specversion": "1.0",
        "id": "1",
        "source": "s",
        "type": "t",
        "n": "7",
        "flag": "false",
    }
    assert event.data == b"[1,2]"


def test_structured_without_time_gets_none_added() -> None:
    envelope = b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}'
    (event,) = parse_request({"content-type": "application/cloudevents+json"}, envelope, LIMIT)
    assert "time" not in event.attributes
    assert event.data == b""


def test_cloudevents_0_3_is_accepted() -> None:
    (event,) = parse_request(binary_headers(**{"ce-specversion": "0.3"}), b"{}", LIMIT)
    assert event.attributes["specversion"] == "0.3"


def test_empty_batch() -> None:
    assert parse_request({"content-type": "application/cloudevents-batch+json"}, b"[]", LIMIT) == []


@pytest.mark.parametrize(
    ("headers", "body", "reason", "mentions"),
    [
        (binary_headers(**{"ce-type": ""}), b"{}", "malformed", "type"),
        (binary_headers(**{"ce-time": "2026-13-45"}), b"{}", "malformed", "RFC 3339"),
        (without("ce-id"), b"{}", "malformed", "id missing"),
        (binary_headers(**{"ce-id": ""}), b"{}", "malformed", "id missing"),
        (without("ce-source"), b"{}", "malformed", "source missing"),
        (without("ce-type"), b"{}", "malformed", "type missing"),
        (binary_headers(**{"ce-specversion": ""}), b"{not json", "malformed", "specversion missing"),
        (without("ce-specversion"), b"{}", "malformed", "specversion missing"),
        (binary_headers(), gzip.compress(b" " * (LIMIT + 10)), "too_large", "decompressed"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"}', "malformed", "id"),
        ({"content-type": "application/cloudevents+json"}, b"{not json", "malformed", "not valid JSON"),
        ({"content-type": "application/cloudevents-batch+json"}, b"[{", "malformed", "not valid JSON"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"id": "1", "source": "s", "type": "t", "data": {}}',
            "malformed",
            "specversion missing",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data_base64": "!!"}',
            "malformed",
            "base64",
        ),
        ({}, b"", "unsupported_media_type", "(none)"),
    ],
)
def test_refusals(headers: dict[str, str], body: bytes, reason: str, mentions: str) -> None:
    with pytest.raises(IngestError) as error:
        parse_request(headers, body, LIMIT)
    assert error.value.reason == reason
    assert mentions in error.value.message


@pytest.mark.parametrize(
    ("extra", "body", "says"),
    [
        ({}, b"{not json", "body is not valid JSON"),
        ({}, b'{"a": ' * 5000 + b"1" + b"}" * 5000, "body is not valid JSON"),
        ({}, b"\xff\xfe", "body is not valid JSON"),
        ({"content-type": "text/json; charset=utf-8"}, b"[1, 2", "body is not valid JSON"),
        ({}, gzip.compress(b"{}")[:-3], "body is not valid gzip: the stream is truncated"),
        ({"content-encoding": "gzip"}, b"not gzip", "body is not valid gzip"),
        ({"content-encoding": "gzip"}, gzip.compress(b"{not json"), "body is not valid JSON"),
    ],
)
def test_a_body_that_does_not_parse_is_kept_and_marked(extra: dict[str, str], body: bytes, says: str) -> None:
    """The KServe logger never sends an event again: the bytes are kept, the mark says why."""
    (event,) = parse_request(binary_headers(**extra), body, LIMIT)
    assert event.data is body
    mark = event.attributes[BODY_ERROR]
    assert mark.startswith(says)
    assert len(mark) <= BODY_ERROR_LENGTH and mark.isprintable()
    assert {name: value for name, value in event.attributes.items() if name != BODY_ERROR} == {
        **{name[3:]: value for name, value in binary_headers().items() if name.startswith("ce-")},
        "datacontenttype": extra.get("content-type", "application/json"),
    }
    assert dict(to_kafka_headers(event.attributes))["ce_" + BODY_ERROR] == mark.encode()


def test_a_declared_gzip_body_that_does_not_inflate_keeps_its_encoding() -> None:
    (event,) = parse_request(binary_headers(**{"content-encoding": "gzip"}), b"not gzip", LIMIT)
    assert event.content_encoding == "gzip" and event.data == b"not gzip"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"instances": [[1]]}'),
        ("application/json", b""),
        ("application/octet-stream", b"{not json"),
        ("text/plain", b"\x00\x01 anything"),
    ],
)
def test_a_body_that_parses_or_claims_nothing_is_not_marked(content_type: str, body: bytes) -> None:
    (event,) = parse_request(binary_headers(**{"content-type": content_type}), body, LIMIT)
    assert BODY_ERROR not in event.attributes and event.data == body


@pytest.mark.parametrize(("body", "marked"), [(b'{"instances": [[1]]}', False), (b"{not json", True)])
def test_a_mark_the_client_sends_is_dropped_and_decided_again(body: bytes, marked: bool) -> None:
    forged = binary_headers(**{"ce-" + BODY_ERROR: "forged by the client"})
    (event,) = parse_request(forged, body, LIMIT)
    assert event.attributes.get(BODY_ERROR, "").startswith("body is not valid JSON") is marked
    assert "forged" not in event.attributes.get(BODY_ERROR, "")


def test_a_mark_in_a_structured_or_batch_event_is_dropped() -> None:
    envelope = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", BODY_ERROR: "forged", "data": {}}
    structured = {"content-type": "application/cloudevents+json"}
    (event,) = parse_request(structured, json.dumps(envelope).encode(), LIMIT)
    assert BODY_ERROR not in event.attributes and event.attributes["id"] == "1"
    batch = {"content-type": "application/cloudevents-batch+json"}
    events = parse_request(batch, json.dumps([envelope, {**envelope, "id": "2"}]).encode(), LIMIT)
    assert [BODY_ERROR in event.attributes for event in events] == [False, False]
