"""Hostile Kafka records, as anything writing straight to a topic could produce them.

Whatever the headers and the value, reading a record either gives an event whose body decodes
and whose record the store takes, or raises one of the two errors the worker dead-letters.
Anything else would stop the worker's agent (or, in the store, hold the stream on one batch).
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_seen
from hypothesis import strategies as st
from sqlalchemy import func, select

from infersight.binding import from_kafka_record
from infersight.eventformat import InvalidEvent
from infersight.records import Half, InferenceRecord, half_of, request_id_of
from infersight.sinks.store import SqlStore
from infersight.sinks.store.models import Inference
from infersight.streams.decode import DecodeError, decode_event
from tests.postgres import create_database

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(max_size=20) | st.sampled_from(["", "1.0", "0.3", "models", "iris", "2026-11-25T10:00:00Z"])
kinds = st.sampled_from(
    [
        "org.kubeflow.serving.inference.request",
        "org.kubeflow.serving.inference.response",
        "io.seldon.serving.inference.request",
        "io.infersight.feedback",
        "x",
    ]
)
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=10)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda rows: {"instances": rows}, documents),
    st.builds(lambda rows: {"predictions": rows}, documents),
    st.builds(
        lambda name, shape, datatype, data: {
            "inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]
        },
        texts,
        st.lists(st.integers(-2, 5), max_size=3),
        st.sampled_from(["FP32", "INT64", "BYTES", "BOOL", "FP16", "BF16", "UINT8", "NOPE"]),
        documents,
    ),
    st.builds(lambda data: {"data": data}, documents),
    documents,
)


def encoded(body: Any, gzipped: bool, truncate: int) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
    if gzipped:
        raw = gzip.compress(raw)
    return raw[: len(raw) - truncate] if truncate else raw


header_values = texts.map(str.encode) | st.binary(max_size=12)
#: Mostly well-formed KServe or Seldon attributes, sometimes with hostile ones added or replaced.
attributes = st.builds(
    lambda kind, model, perturbed: [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"r-1"),
        ("ce_source", b"s"),
        ("ce_type", kind.encode()),
        ("ce_namespace", b"models"),
        ("ce_inferenceservicename", model),
        *perturbed,
    ],
    kinds,
    st.just(b"iris") | header_values,
    st.lists(
        st.tuples(
            st.sampled_from(
                ["ce_specversion", "ce_id", "ce_type", "type", "requestid", "modelid", "ce_time"]
            ),
            header_values,
        ),
        max_size=2,
    ),
)
records = st.builds(
    lambda attrs, content_type, encoding, body, gzipped, truncate: (
        attrs
        + ([("content-type", content_type)] if content_type else [])
        + ([("content-encoding", encoding)] if encoding else []),
        encoded(body, gzipped, truncate),
    ),
    attributes,
    st.sampled_from(
        [
            None,
            b"application/json",
            b"application/cloudevents+json",
            b"application/octet-stream",
            b"text/plain",
        ]
    ),
    st.sampled_from([None, None, b"gzip", b"br", b"\xff"]),
    bodies,
    st.booleans(),
    st.sampled_from([0, 0, 0, 1, 3]),
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_server"), f"fuzz_{uuid.uuid4().hex[:12]}")
    opened = SqlStore(url)
    yield opened
    opened.close()


@FUZZ
@given(record=records)
def test_a_record_is_read_and_stored_or_refused_with_a_reason(
    store: SqlStore, record: tuple[list[tuple[str, bytes]], bytes]
) -> None:
    headers, value = record
    try:
        event = from_kafka_record(headers, value)
        kind = half_of(event)
        if kind is None:
            return
        half = Half(event=event, payload=decode_event(event), received_at=0.0)
    except (InvalidEvent, DecodeError) as exc:
        assert str(exc)  # the dead letter says why
        event_seen(type(exc).__name__)
        return
    event_seen(f"stored {kind}")
    inference = InferenceRecord(
        request_id=request_id_of(event),
        model=event.model,
        request=half if kind == "request" else None,
        response=half if kind == "response" else None,
    )
    store.write([inference], [], [])
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(func.count()).where(
                Inference.request_id == inference.request_id,
                Inference.namespace == event.model.namespace,
                Inference.inferenceservice == event.model.inferenceservice,
                Inference.component == event.model.component,
                Inference.occurrence == inference.occurrence,
            )
        ).scalar_one()
    assert stored == 1
