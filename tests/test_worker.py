"""Stream workers against the real broker: decoding, pairing, timeouts, dead letters, restarts, scale-out."""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rocksdict
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from infersight.config import KafkaConfig, WorkerConfig
from infersight.eventformat import BODY_ERROR
from infersight.kafkaclient import ensure_topics
from infersight.streams.app import state_options
from tests.helpers import Ingest, Worker, read_topic, run_ingest, run_worker, wait_for_records
from tests.test_ingest import KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE, kserve_headers, seldon_headers

PAIRING_TIMEOUT = "3"


class Pipeline:
    def __init__(
        self, bootstrap: str, ingest: Ingest, worker: Worker, records: str, extra: str, store: Path
    ) -> None:
        self.bootstrap = bootstrap
        self.ingest = ingest
        self.worker = worker
        self.records = records
        self.extra = extra
        self.store = store
        self.deadletter = f"{ingest.topic}.deadletter"

    def post(self, headers: dict[str, str], body: bytes) -> None:
        answer = httpx.post(self.ingest.url, headers=headers, content=body, timeout=30)
        assert answer.status_code == 202, answer.text

    def record(self, request_id: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in read_topic(self.bootstrap, self.records):
                value = json.loads(record.value)  # type: ignore[attr-defined]
                if value["request_id"] == request_id:
                    return value  # type: ignore[no-any-return]
            time.sleep(0.5)
        raise TimeoutError(f"no record for {request_id}")

    def stored(self, request_id: str) -> dict[str, Any]:
        """The store's row for ``request_id`` (the worker writes it before the records topic)."""
        engine = create_engine(f"sqlite:///{self.store}")
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    text("SELECT * FROM inferences WHERE request_id = :id"), {"id": request_id}
                ).one()
        finally:
            engine.dispose()
        return dict(row._mapping)

    def counter(self, name: str, **labels: str) -> float | None:
        """One sample of the worker's metrics, None when it has no such series."""
        page = httpx.get(self.worker.metrics_url, timeout=10).text
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return float(sample.value)
        return None


def worker_env(records: str, **extra: str) -> dict[str, str]:
    return {
        "INFERSIGHT_WORKER__GROUP_ID": f"test-worker-{uuid.uuid4().hex[:6]}",
        "INFERSIGHT_WORKER__RECORDS_TOPIC": records,
        "INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS": PAIRING_TIMEOUT,
        "INFERSIGHT_WORKER__BATCH_SECONDS": "0.2",
        **extra,
    }


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    logs = tmp_path_factory.mktemp("worker")
    topic = f"test.stream.{uuid.uuid4().hex[:8]}"
    extra = f"{topic}.knative"
    records = f"{topic}.records"
    ensure_topics(KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=3), [extra, records])
    with (
        run_ingest(kafka_bootstrap, topic, logs) as ingest,
        run_worker(
            kafka_bootstrap,
            topic,
            logs,
            **worker_env(records, INFERSIGHT_WORKER__EXTRA_TOPICS=json.dumps([extra])),
        ) as worker,
    ):
        yield Pipeline(kafka_bootstrap, ingest, worker, records, extra, logs / "store.db")


def tensor(half: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in half["tensors"] if t["name"] == name)


def test_kserve_v1_pair_is_decoded(pipeline: Pipeline) -> None:
    event_id = str(uuid.uuid4())
    pipeline.post(kserve_headers(event_id, "request"), KSERVE_V1_REQUEST)
    pipeline.post(kserve_headers(event_id, "response"), KSERVE_V1_RESPONSE)
    record = pipeline.record(event_id)
    assert record["mode"] == "paired"
    assert (record["namespace"], record["inferenceservice"], record["endpoint"]) == (
        "models",
        "iris",
        "canary",
    )
    instances = tensor(record["request"], "instances")
    assert (instances["dtype"], instances["shape"]) == ("float64", [2, 4])
    assert instances["data"][1] == [6.0, 3.4, 4.5, 1.6]
    predictions = tensor(record["response"], "predictions")
    assert (predictions["dtype"], predictions["data"]) == ("int64", [1, 1])
    assert record["request"]["attributes"]["time"] == "2026-11-25T10:15:30.123456789Z"


def test_response_first_and_v2_tensors(pipeline: Pipeline) -> None:
    event_id = str(uuid.uuid4())
    request = {
        "inputs": [
            {
                "name": "pixels",
                "shape": [2, 2, 2],
                "datatype": "FP32",
                "data": [[[0, 1], [2, 3]], [[4, 5], [6, 7]]],
            },
            {"name": "flags", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ]
    }
    response = {
        "model_name": "digits",
        "outputs": [{"name": "label", "shape": [2], "datatype": "INT32", "data": [3, 8]}],
    }
    pipeline.post(kserve_headers(event_id, "response"), json.dumps(response).encode())
    pipeline.post(kserve_headers(event_id, "request"), json.dumps(request).encode())
    record = pipeline.record(event_id)
    assert record["mode"] == "paired"
    assert record["request"]["protocol"] == "oip-v2"
    pixels = tensor(record["request"], "pixels")
    assert (pixels["dtype"], pixels["shape"]) == ("float32", [2, 2, 2])
    assert tensor(record["request"], "flags")["dtype"] == "bool"
    assert tensor(record["response"], "label") == {
        "name": "label",
        "dtype": "int32",
        "shape": [2],
        "columns": None,
        "data": [3, 8],
    }


def test_seldon_gzip_pair_by_request_id(pipeline: Pipeline) -> None:
    request_id = str(uuid.uuid4())
    body = {"data": {"names": ["age", "hours"], "ndarray": [[39, 40], [50, 13]]}}
    pipeline.post(seldon_headers(request_id, "request"), gzip.compress(json.dumps(body).encode()))
    reply = {"data": {"names": ["p0", "p1"], "ndarray": [[0.9, 0.1], [0.2, 0.8]]}, "meta": {}}
    pipeline.post(seldon_headers(request_id, "response"), gzip.compress(json.dumps(reply).encode()))
    record = pipeline.record(request_id)
    assert record["mode"] == "paired"
    ndarray = tensor(record["request"], "ndarray")
    assert ndarray["columns"] == ["age", "hours"] and ndarray["shape"] == [2, 2]
    assert tensor(record["response"], "ndarray")["columns"] == ["p0", "p1"]


def test_lonely_half_is_emitted_after_the_timeout(pipeline: Pipeline) -> None:
    event_id = str(uuid.uuid4())
    sent = time.monotonic()
    pipeline.post(kserve_headers(event_id, "request"), KSERVE_V1_REQUEST)
    record = pipeline.record(event_id)
    assert time.monotonic() - sent >= float(PAIRING_TIMEOUT) - 0.5
    assert record["mode"] == "request" and record["response"] is None


def test_undecodable_bodies_are_paired_and_stored_raw_and_counted(pipeline: Pipeline) -> None:
    """A body is data: one the ingest marked and one whose tensors do not decode are kept, not lost."""
    event_id = str(uuid.uuid4())
    not_json = b'{"instances": [[1.0, 2.0]'
    bad_tensor = json.dumps({"outputs": [{"name": "y", "shape": [3], "datatype": "FP32", "data": [1]}]})
    pipeline.post(kserve_headers(event_id, "request"), not_json)
    pipeline.post(kserve_headers(event_id, "response"), bad_tensor.encode())
    record = pipeline.record(event_id)
    assert record["mode"] == "paired"
    assert record["request"]["protocol"] == record["response"]["protocol"] == "raw"
    assert record["request"]["attributes"][BODY_ERROR].startswith("body is not valid JSON")
    assert BODY_ERROR not in record["response"]["attributes"]
    row = pipeline.stored(event_id)
    assert (row["request_protocol"], row["response_protocol"]) == ("raw", "raw")
    assert bytes(row["request_body"]) == not_json
    assert bytes(row["response_body"]) == bad_tensor.encode()
    model = {
        "namespace": "models",
        "inferenceservice": "iris",
        "component": "predictor",
        "endpoint": "canary",
    }
    undecodable = "infersight_undecodable_payloads_total"
    assert pipeline.counter(undecodable, **model, reason="marked_by_ingest") == 1
    assert pipeline.counter(undecodable, **model, reason="invalid_tensor") == 1
    raw = pipeline.counter("infersight_raw_payloads_total", **model)
    assert raw is not None and raw >= 2
    assert pipeline.counter("infersight_deadletters_total", reason="undecodable_payload") is None  # none such


def test_a_record_that_is_no_cloudevent_goes_to_the_dead_letter_topic(pipeline: Pipeline) -> None:
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    producer.send(pipeline.ingest.topic, b"no headers at all", key=b"models/iris").get(timeout=30)
    producer.close()
    (letter,) = wait_for_records(pipeline.bootstrap, pipeline.deadletter, 1)
    headers = dict(letter.headers)  # type: ignore[attr-defined]
    assert headers["infersight-deadletter-reason"].decode().startswith("invalid_event: not a CloudEvent")
    assert headers["infersight-deadletter-origin"].startswith(pipeline.ingest.topic.encode())
    assert bytes(letter.value) == b"no headers at all"  # type: ignore[attr-defined]
    assert pipeline.counter("infersight_deadletters_total", reason="invalid_event") == 1


def test_knative_and_seldon_kafka_records_on_an_extra_topic(pipeline: Pipeline) -> None:
    event_id = str(uuid.uuid4())
    producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap)
    for kind, body in (("request", KSERVE_V1_REQUEST), ("response", KSERVE_V1_RESPONSE)):
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", event_id.encode()),
            ("ce_source", b"http://localhost:9081/"),
            ("ce_type", f"org.kubeflow.serving.inference.{kind}".encode()),
            ("ce_inferenceservicename", b"iris"),
            ("ce_namespace", b"knative"),
            ("content-type", b"application/json"),
        ]
        producer.send(pipeline.extra, body, key=b"knative/iris", headers=headers)
    request_id = str(uuid.uuid4())
    for kind, body in (
        ("request", b'{"data": {"ndarray": [[1, 2]]}}'),
        ("response", b'{"data": {"ndarray": [[0.3]]}}'),
    ):
        headers = [
            ("type", f"io.seldon.serving.inference.{kind}".encode()),
            ("requestid", request_id.encode()),
            ("modelid", b"classifier"),
            ("namespace", b"seldon"),
            ("endpoint", b"default"),
            ("protocol", b"seldon"),
            ("content-type", b"application/json"),
        ]
        producer.send(pipeline.extra, body, key=b"seldon/classifier", headers=headers)
    producer.flush()
    producer.close()
    knative = pipeline.record(event_id)
    assert knative["mode"] == "paired" and knative["namespace"] == "knative"
    seldon = pipeline.record(request_id)
    assert seldon["mode"] == "paired" and seldon["inferenceservice"] == "classifier"
    assert tensor(seldon["response"], "ndarray")["data"] == [[0.3]]


def test_worker_metrics(pipeline: Pipeline) -> None:
    event_id = str(uuid.uuid4())
    pipeline.post(kserve_headers(event_id, "request"), KSERVE_V1_REQUEST)
    pipeline.post(kserve_headers(event_id, "response"), KSERVE_V1_RESPONSE)
    lone_id = str(uuid.uuid4())
    pipeline.post(kserve_headers(lone_id, "request"), KSERVE_V1_REQUEST)  # its response never comes
    pipeline.record(event_id)
    assert pipeline.record(lone_id)["mode"] == "request"
    text = httpx.get(pipeline.worker.metrics_url, timeout=10).text
    model = 'component="predictor",endpoint="canary",inferenceservice="iris"'
    served = 'namespace="models",revision="canary"'
    assert f'infersight_records_total{{{model},mode="paired",{served}}}' in text
    assert f'infersight_records_total{{{model},mode="request",{served}}}' in text
    assert f"infersight_event_lag_seconds_count{{{model},{served}}}" in text
    assert "infersight_pending_halves " in text
    base = pipeline.worker.metrics_url.removesuffix("/metrics")
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    assert httpx.get(f"{base}/nothing", timeout=10).status_code == 404


def test_other_event_types_are_counted_with_bounded_labels(pipeline: Pipeline) -> None:
    for event_type in ("io.infersight.feedback", f"com.example.{uuid.uuid4().hex}"):
        envelope = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "urn:test",
            "type": event_type,
            "namespace": "models",
            "inferenceservicename": "iris",
            "data": {"request_id": "abc", "truth": [1]},
        }
        answer = httpx.post(
            pipeline.ingest.url,
            headers={"Content-Type": "application/cloudevents+json"},
            content=json.dumps(envelope).encode(),
            timeout=30,
        )
        assert answer.status_code == 202
    wanted = (
        'infersight_stream_events_total{type="io.infersight.feedback"} 1.0',
        'infersight_stream_events_total{type="other"} 1.0',
    )
    deadline = time.monotonic() + 60
    while not all(
        line in (text := httpx.get(pipeline.worker.metrics_url, timeout=10).text) for line in wanted
    ):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    assert "com.example." not in text


def test_the_state_holds_its_memtables_to_the_worker_setting(tmp_path: Path) -> None:
    """Open windows are rewritten every checkpoint: RocksDB's memtables must not grow with them."""
    options = state_options(WorkerConfig(state_write_buffer_mb=1, state_cache_mb=4))
    db = rocksdict.Rdict(str(tmp_path / "state"), options=options.to_options())
    window = os.urandom(35_000)
    peak = 0
    try:
        for step in range(600):  # 21 MB of rewrites of eight windows
            db[f"window-{step % 8}".encode()] = window
            peak = max(peak, int(db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0))
    finally:
        db.close()
    assert 512 * 1024 < peak <= 2 * (1 << 20) + 64 * 1024
