"""The whole path as a user runs it: KServe events over HTTP, a worker with detectors, every output.

A configuration names a saved KSDrift and a saved IForest for one model. Traffic whose second
half is shifted goes through the ingest; the detections topic must show no drift for the first
windows and drift for the shifted ones, outliers on the injected far-away points, the reply URL
must receive the detections (after a refusal, retried), the store must hold one row per
inference even when events are delivered twice, feedback must set labels whenever it comes, and
the worker's /metrics must show the contract's metrics.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from kafka import KafkaProducer

from tests.detectors_data import breast_cancer, save_ks_and_iforest
from tests.helpers import free_port, read_topic, run_ingest, run_worker

WINDOW = 100
MODEL = "cancer"
NAMESPACE = "clinic"
FAR_AWAY = (17, 55, 140)


class ReplyReceiver(ThreadingHTTPServer):
    """A reply URL that refuses its first POST with 503, then takes everything."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.refused == 0:
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.events.append((dict(self.headers.items()), json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture
def reply() -> Iterator[ReplyReceiver]:
    server = ReplyReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def headers(request_id: str, kind: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": request_id,
        "Ce-Source": "http://cancer-predictor.clinic/",
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Ce-Inferenceservicename": MODEL,
        "Ce-Namespace": NAMESPACE,
        "Ce-Component": "predictor",
        "Ce-Endpoint": "default",
    }


def feedback(request_id: str, label: int) -> tuple[dict[str, str], bytes]:
    return (
        {
            "Content-Type": "application/json",
            "Ce-Specversion": "1.0",
            "Ce-Id": f"fb-{request_id}",
            "Ce-Source": "/labelling",
            "Ce-Type": "io.infersight.feedback",
            "Ce-Inferenceservicename": MODEL,
            "Ce-Namespace": NAMESPACE,
        },
        json.dumps({"request_id": request_id, "label": label}).encode(),
    )


def test_drift_outliers_reply_store_feedback_and_metrics(
    kafka_bootstrap: str, tmp_path: Path, reply: ReplyReceiver
) -> None:
    ks, iforest = save_ks_and_iforest(tmp_path)
    config = tmp_path / "infersight.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "detections": {"reply_url": f"http://127.0.0.1:{reply.server_address[1]}/detections"},
                "models": [
                    {
                        "namespace": NAMESPACE,
                        "inferenceservice": MODEL,
                        "detectors": [
                            {
                                "name": "ks",
                                "kind": "drift",
                                "uri": f"file://{ks}",
                                "window": {"size": WINDOW},
                            },
                            {
                                "name": "iforest",
                                "kind": "outlier",
                                "uri": f"file://{iforest}",
                                "allow_unsafe_loading": True,
                            },
                        ],
                    }
                ],
            }
        )
    )
    _, held_out = breast_cancer()
    rows = np.concatenate([held_out[: 2 * WINDOW], held_out[: 2 * WINDOW] + 1.0])
    rows[list(FAR_AWAY)] += 12.0
    ids = [f"req-{index:04d}-{uuid.uuid4().hex[:6]}" for index in range(len(rows))]
    labels = {ids[0]: 1, ids[1]: 0}

    topic = f"test.detect.{uuid.uuid4().hex[:8]}"
    store = tmp_path / "store.db"
    with (
        run_ingest(kafka_bootstrap, topic, tmp_path) as ingest,
        run_worker(
            kafka_bootstrap,
            topic,
            tmp_path,
            INFERSIGHT_CONFIG=str(config),
            INFERSIGHT_STORE__URL=f"sqlite:///{store}",
            INFERSIGHT_WORKER__GROUP_ID=f"test-{uuid.uuid4().hex[:6]}",
            INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
        ) as worker,
        httpx.Client(base_url=ingest.url, timeout=30) as client,
    ):
        # Feedback can come before its inference...
        answer = client.post("/", headers=feedback(ids[0], labels[ids[0]])[0], content=feedback(ids[0], 1)[1])
        assert answer.status_code == 202
        for request_id, row in zip(ids, rows, strict=True):
            prediction = int(row.sum() > 0)
            for kind, body in (
                ("request", {"instances": [row.tolist()]}),
                ("response", {"predictions": [prediction]}),
            ):
                answer = client.post("/", headers=headers(request_id, kind), content=json.dumps(body))
                assert answer.status_code == 202, answer.text
        # ...or after it.
        answer = client.post("/", headers=feedback(ids[1], labels[ids[1]])[0], content=feedback(ids[1], 0)[1])
        assert answer.status_code == 202

        detections_topic = f"{topic}.detections"
        drift: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while len(drift) < 4 and time.monotonic() < deadline:
            time.sleep(1)
            events = (
                read_topic(kafka_bootstrap, detections_topic)
                if _exists(kafka_bootstrap, detections_topic)
                else []
            )
            drift = [
                json.loads(e.value)  # type: ignore[attr-defined]
                for e in events
                if dict(e.headers).get("ce_type") == b"io.infersight.detection.drift"  # type: ignore[attr-defined]
            ]
        assert [d["detected"] for d in drift] == [False, False, True, True], drift
        assert all(d["window"]["instances"] == WINDOW and len(d["request_ids"]) == WINDOW for d in drift)
        assert drift[0]["request_ids"] == ids[:WINDOW]
        assert len(drift[2]["features"]) == 30 and drift[2]["p_value"] < 0.01

        events = read_topic(kafka_bootstrap, detections_topic)
        outliers = [
            json.loads(e.value)
            for e in events
            if dict(e.headers).get("ce_type") == b"io.infersight.detection.outlier"
        ]  # type: ignore[attr-defined]
        flagged = {d["request_ids"][0] for d in outliers}
        assert {ids[index] for index in FAR_AWAY} <= flagged
        in_distribution = flagged & set(ids[: 2 * WINDOW]) - {ids[index] for index in FAR_AWAY}
        assert len(in_distribution) <= 4  # 0.5% expected above the 99.5th percentile
        event = next(e for e in events if json.loads(e.value)["kind"] == "drift")  # type: ignore[attr-defined]
        attributes = dict(event.headers)  # type: ignore[attr-defined]
        assert attributes["ce_subject"] == f"{NAMESPACE}/{MODEL}".encode()
        assert event.key == f"{NAMESPACE}/{MODEL}".encode()  # type: ignore[attr-defined]

        # The same events again, as a producer's resend would bring them: the feedback event and 59
        # halves. No row is added, and the halves are dropped before detectors and counters see them.
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for payload in read_topic(kafka_bootstrap, topic)[:60]:
            producer.send(topic, key=payload.key, value=payload.value, headers=payload.headers)  # type: ignore[attr-defined]
        producer.flush()
        producer.close()

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stored = _rows(store, "select count(*) from inferences")
            labelled = _rows(store, "select request_id, label from inferences where label is not null")
            settled = stored and stored[0][0] == len(ids) and len(labelled) == 2
            if settled and len(reply.events) >= len(drift) and _duplicates(worker.metrics_url) == 59:
                break
            time.sleep(1)
        assert _rows(store, "select count(*), count(distinct request_id) from inferences") == [
            (len(ids), len(ids))
        ]
        assert {request_id: json.loads(str(label)) for request_id, label in labelled} == labels
        flagged_rows = {r[0] for r in _rows(store, "select request_id from inferences where outlier")}
        assert flagged_rows == flagged
        stored_drift = _rows(
            store, "select detected from detections where kind = 'drift' order by window_start"
        )
        assert [bool(d[0]) for d in stored_drift] == [False, False, True, True]

        assert reply.refused == 1
        kinds = {headers.get("ce-type") for headers, _ in reply.events}
        assert kinds == {"io.infersight.detection.drift", "io.infersight.detection.outlier"}
        assert sum(1 for _, data in reply.events if data["kind"] == "drift") == 4

        metrics = httpx.get(worker.metrics_url, timeout=10).text
        component = 'component="predictor"'
        model = f'endpoint="default",inferenceservice="{MODEL}",namespace="{NAMESPACE}"'
        # The source names no pod, so the endpoint names the revision of each record; the drift
        # test watches every revision, so its revision label is empty.
        served = f'{model},revision="default"'
        watched = f'{model},revision=""'
        for line in (
            f'infersight_drift_tests_total{{{component},detector="ks",drift="true",{watched}}} 2.0',
            f'infersight_drift_tests_total{{{component},detector="ks",drift="false",{watched}}} 2.0',
            f'infersight_drift_detected{{{component},detector="ks",{watched}}} 1.0',
            f'infersight_outliers_total{{{component},detector="iforest",{served}}} {float(len(flagged))}',
            f'infersight_records_total{{{component},endpoint="default",inferenceservice="{MODEL}",mode="paired",'
            f'namespace="{NAMESPACE}",revision="default"}} {float(len(ids))}',
            f"infersight_duplicates_total{{{component},{served}}} 59.0",
            'infersight_store_rows_total{table="inferences"}',
            "infersight_outlier_score_bucket",
            "infersight_detector_duration_seconds_bucket",
            "infersight_drift_p_value",
            "infersight_drift_distance",
            "infersight_drift_feature_p_value",
            "infersight_event_lag_seconds_bucket",
            "infersight_feedback_total",
            "infersight_records_total",
        ):
            assert line in metrics, line


def _duplicates(metrics_url: str) -> float:
    found = re.search(r"^infersight_duplicates_total\{[^}]*\} (\S+)$", httpx.get(metrics_url).text, re.M)
    return float(found.group(1)) if found else 0.0


def _exists(bootstrap: str, topic: str) -> bool:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return topic in consumer.topics()
    finally:
        consumer.close()


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []
