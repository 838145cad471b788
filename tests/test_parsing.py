"""Parsing HTTP requests into events, without a broker: what is kept, what is refused."""

from __future__ import annotations

import gzip
import json

import pytest

from infersight.binding import to_kafka_headers
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
        (binary_headers(), b'{"a": ' * 5000 + b"1" + b"}" * 5000, "malformed", "JSON"),
        (binary_headers(), gzip.compress(b"{}")[:-3], "malformed", "truncated"),
        (binary_headers(**{"content-encoding": "gzip"}), b"not gzip", "malformed", "gzip"),
        (binary_headers(), gzip.compress(b" " * (LIMIT + 10)), "too_large", "decompressed"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion": "1.0"}', "malformed", "id"),
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
