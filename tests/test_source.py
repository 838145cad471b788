"""The steps from a Kafka record to a half, without a broker: read, admit, re-key, decode."""

from __future__ import annotations

import gzip
import json

import pytest
from prometheus_client import CollectorRegistry

from infersight.binding import from_kafka_record, to_kafka_headers
from infersight.config import ModelConfig
from infersight.eventformat import BODY_ERROR
from infersight.privacy import REDACTED, TrafficRules
from infersight.sinks.deadletter import DeadLetters
from infersight.streams.decode import Undecodable
from infersight.streams.metrics import StreamMetrics
from infersight.streams.pairing import lone_record
from infersight.streams.source import Source, is_feedback

ATTRIBUTES = {
    "specversion": "1.0",
    "id": "r-1",
    "source": "http://localhost:9081/",
    "type": "org.kubeflow.serving.inference.request",
    "time": "2026-12-01T10:00:00.123456789Z",
    "namespace": "models",
    "inferenceservicename": "iris",
    "component": "predictor",
    "datacontenttype": "application/json",
}
MODEL_LABELS = {
    "namespace": "models",
    "inferenceservice": "iris",
    "component": "predictor",
    "endpoint": "",
    "revision": "",
}
BODY = json.dumps({"instances": [{"age": 41, "email": "ada@example.com"}]}).encode()


class Published(list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]):
    def __call__(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.append((topic, key, value, headers))


def source(*models: ModelConfig) -> tuple[Source, Published, CollectorRegistry]:
    registry, published = CollectorRegistry(), Published()
    metrics = StreamMetrics(registry)
    return (
        Source(TrafficRules(models, 1 << 20), DeadLetters("dlq", published, registry), metrics),
        published,
        registry,
    )


def test_a_record_that_is_no_cloudevent_is_dead_lettered_with_its_reason_and_origin() -> None:
    steps, published, registry = source()
    assert steps.read(b"{}", [("x-whatever", b"1")], "payloads/2/17") is None
    (topic, key, value, headers) = published[0]
    assert (topic, key, value) == ("dlq", None, b"{}")
    found = dict(headers)
    assert found["infersight-deadletter-origin"] == b"payloads/2/17"
    assert found["infersight-deadletter-reason"].startswith(b"invalid_event: not a CloudEvent")
    assert found["x-whatever"] == b"1"  # the record as it came, its headers too
    assert registry.get_sample_value("infersight_deadletters_total", {"reason": "invalid_event"}) == 1


def test_a_broken_body_is_kept_raw_and_a_good_one_decoded() -> None:
    steps, published, _ = source()
    good = from_kafka_record(to_kafka_headers(ATTRIBUTES), b'{"instances": [[1.0, 2.0]]}')
    half = steps.half(good, "p/0/1")
    assert half is not None and half.payload.tensor("instances").array.shape == (1, 2)
    broken = from_kafka_record(to_kafka_headers(ATTRIBUTES), b'{"instances": [[1.0, ')
    half = steps.half(broken, "p/0/2")
    assert half is not None and half.event is broken and half.event.data == b'{"instances": [[1.0, '
    assert isinstance(half.payload, Undecodable)
    assert (half.payload.protocol, half.payload.tensors, half.payload.reason) == ("raw", (), "invalid_json")
    assert published == []  # no dead letter: the body is data


@pytest.mark.parametrize(
    ("attributes", "body", "encoding", "reason"),
    [
        (ATTRIBUTES, b"{not json", None, "invalid_json"),
        (ATTRIBUTES, b"not gzip", "gzip", "invalid_gzip"),
        (ATTRIBUTES, b"{}", "br", "unsupported_encoding"),
        (
            ATTRIBUTES,
            b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1]}]}',
            None,
            "invalid_tensor",
        ),
        ({**ATTRIBUTES, BODY_ERROR: "body is not valid JSON: ..."}, b"{not json", None, "marked_by_ingest"),
    ],
)
def test_undecodable_halves_are_counted_by_reason_once_handed_on(
    attributes: dict[str, str], body: bytes, encoding: str | None, reason: str
) -> None:
    steps, _, registry = source()
    event = from_kafka_record(to_kafka_headers(attributes, encoding), body)
    half = steps.half(event, "p/0/4")
    assert half is not None and half.payload.protocol == "raw" and half.event.data == body
    counted = {**MODEL_LABELS, "reason": reason}
    assert registry.get_sample_value("infersight_undecodable_payloads_total", counted) is None
    steps.metrics.record(lone_record(half))
    assert registry.get_sample_value("infersight_undecodable_payloads_total", counted) == 1
    assert registry.get_sample_value("infersight_raw_payloads_total", MODEL_LABELS) == 1


def test_a_raw_body_of_no_known_protocol_is_not_undecodable() -> None:
    steps, _, registry = source()
    half = steps.half(from_kafka_record(to_kafka_headers(ATTRIBUTES), b'{"hello": "world"}'), "p/0/5")
    assert half is not None and half.payload.protocol == "raw"
    steps.metrics.record(lone_record(half))
    assert registry.get_sample_value("infersight_raw_payloads_total", MODEL_LABELS) == 1
    assert not isinstance(half.payload, Undecodable)
    undecodable = [
        sample
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "infersight_undecodable_payloads_total"
    ]
    assert undecodable == []


def test_a_marked_body_that_decodes_after_all_is_decoded() -> None:
    """A v2 body in the binary extension is no JSON to the ingest, which marks it; the worker reads it."""
    header = {
        "inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "parameters": {"binary_data_size": 2}}]
    }
    body = json.dumps(header).encode() + b"\x01\x02"
    marked = {**ATTRIBUTES, BODY_ERROR: "body is not valid JSON: Extra data"}
    half = source()[0].half(from_kafka_record(to_kafka_headers(marked), body), "p/0/6")
    assert half is not None and half.payload.protocol == "oip-v2"
    assert half.payload.tensor("x").array.tolist() == [1, 2]


def test_feedback_is_no_half_and_is_told_apart() -> None:
    steps, _, registry = source()
    feedback = from_kafka_record(
        to_kafka_headers({**ATTRIBUTES, "type": "io.infersight.feedback"}),
        b'{"request_id": "r-1", "label": 1}',
    )
    assert steps.half(feedback, "p/0/3") is None and is_feedback(feedback)
    assert (
        registry.get_sample_value("infersight_stream_events_total", {"type": "io.infersight.feedback"}) == 1
    )


def test_a_keyless_seldon_record_is_written_again_byte_for_byte_under_its_model_key() -> None:
    steps, _, _ = source()
    headers = [("type", b"io.seldon.serving.inference.request"), ("requestid", b"s-1"), ("modelid", b"clf")]
    headers += [
        ("namespace", b"seldon"),
        ("content-type", b"application/json"),
        ("content-encoding", b"gzip"),
    ]
    body = gzip.compress(b'{"data": {"ndarray": [[1, 2]]}}')
    event = steps.read(body, headers, "seldon/0/0")
    assert event is not None
    kept = steps.admit(event, event.model, "seldon/0/0")
    assert kept is event
    key, value, written = steps.rekeyed(event, kept, body, headers)
    assert (key, value, written) == (b"seldon/clf", body, headers)
    assert from_kafka_record(written, value) == event


def test_redaction_and_sampling_apply_before_an_event_is_written_again() -> None:
    model = ModelConfig(namespace="models", inferenceservice="iris", redact=["instances.*.email"])
    steps, _, registry = source(model)
    event = from_kafka_record(to_kafka_headers(ATTRIBUTES), BODY)
    kept = steps.admit(event, event.model, "sink/0/0")
    assert kept is not None and b"ada@example.com" not in kept.data and REDACTED.encode() in kept.data
    key, value, headers = steps.rekeyed(event, kept, BODY, to_kafka_headers(ATTRIBUTES))
    again = from_kafka_record(headers, value)
    assert key == b"models/iris" and again.attributes == event.attributes and again.data == kept.data
    nobody = ModelConfig(namespace="models", inferenceservice="iris", sample_rate=0.0)
    steps, _, registry = source(nobody)
    assert steps.admit(event, event.model, "sink/0/1") is None
    labels = {
        "namespace": "models",
        "inferenceservice": "iris",
        "component": "predictor",
        "endpoint": "",
        "revision": "",
    }
    assert registry.get_sample_value("infersight_sampled_out_total", labels) == 1
