"""Faults under traffic, counted end to end: sent, acknowledged by the ingest, stored.

A worker killed with SIGKILL and restarted, PostgreSQL stopped under a writing worker, and a
reply URL that never answers. Each test prints its counts (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from tests.detectors_data import breast_cancer, save_ks_and_iforest
from tests.helpers import (
    FAST_WORKER,
    Worker,
    committed_offsets,
    count_stored,
    read_topic,
    report_fault,
    run_ingest,
    run_worker,
    start_worker,
    wait_stored,
    wait_until,
)
from tests.postgres import LocalPostgres, create_database
from tests.traffic import Traffic

pytestmark = pytest.mark.slow


def metric(worker: Worker, name: str) -> float:
    """The sum of every series of ``name`` on the worker's /metrics; 0 when it cannot be read."""
    try:
        text = httpx.get(worker.metrics_url, timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE))


def committed(bootstrap: str, group: str, topic: str) -> int:
    return sum(committed_offsets(bootstrap, group, topic).values())


def report(name: str, traffic: Traffic, stored: dict[str, tuple[int, bool, bool]], **extra: object) -> None:
    acknowledged = traffic.acknowledged()
    whole, lost, duplicated = count_stored(acknowledged, stored)
    report_fault(name, len(traffic.answers), len(acknowledged), whole, lost, duplicated, **extra)


def test_a_worker_killed_mid_stream_stores_every_acknowledged_inference_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"test.sigkill.{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_STORE__URL": store,
        "INFERSIGHT_WORKER__GROUP_ID": f"kill-{uuid.uuid4().hex[:6]}",
    }
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        first = start_worker(kafka_bootstrap, topic, tmp_path, **env)
        second = None
        try:
            with Traffic(ingest.url, pairs=True, senders=3) as traffic:
                wait_until(lambda: metric(first, "infersight_records_total") >= 200, 90, "records stored")
                first.kill()  # SIGKILL: no shutdown, no last commit
                killed_at = len(traffic.acknowledged())
                second = start_worker(kafka_bootstrap, topic, tmp_path, **env)
                wait_until(
                    lambda: len(traffic.acknowledged()) >= killed_at + 300, 90, "traffic after the kill"
                )
            acknowledged = traffic.acknowledged()
            stored = wait_stored(store, acknowledged, timeout=120, halves=2)
            report("worker SIGKILL", traffic, stored)
            assert all(stored[i] == (1, True, True) for i in acknowledged)
            # Nothing was stored that the ingest did not take.
            assert set(stored) <= set(traffic.answers)
        finally:
            for worker in (first, second):
                if worker is not None and worker.process.poll() is None:
                    worker.kill()


def test_postgresql_stopped_under_a_writing_worker_holds_offsets_and_catches_up(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """PostgreSQL stops; the worker backs off and is then killed: what it committed was all stored.

    A worker that committed offsets past records it could not store would lose them when its
    successor starts from those offsets: every acknowledged inference must still be stored once.
    """
    server = LocalPostgres()
    server.start()
    try:
        store = create_database(server.url, "faults")
        topic = f"test.pgdown.{uuid.uuid4().hex[:8]}"
        group = f"pg-{uuid.uuid4().hex[:6]}"
        env = {**FAST_WORKER, "INFERSIGHT_STORE__URL": store, "INFERSIGHT_WORKER__GROUP_ID": group}
        with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
            first = start_worker(kafka_bootstrap, topic, tmp_path, **env)
            second = None
            try:
                with Traffic(ingest.url, pairs=True, senders=2, pause=0.02) as traffic:
                    wait_until(lambda: metric(first, "infersight_store_rows_total") >= 100, 90, "rows stored")
                    server.stop()
                    down_at = len(traffic.acknowledged())
                    wait_until(
                        lambda: metric(first, "infersight_store_errors_total") >= 3, 60, "failed writes"
                    )
                    wait_until(lambda: len(traffic.acknowledged()) >= down_at + 200, 60, "traffic meanwhile")
                    errors = metric(first, "infersight_store_errors_total")
                    assert first.process.poll() is None, "the worker gave up on the store"
                    first.kill()  # SIGKILL while the store is away: only what it committed survives
                    server.start()
                    second = start_worker(kafka_bootstrap, topic, tmp_path, **env)
                    wait_until(
                        lambda: metric(second, "infersight_store_rows_total") >= 100, 90, "catching up"
                    )
                acknowledged = traffic.acknowledged()
                stored = wait_stored(store, acknowledged, timeout=120, halves=2)
            finally:
                for worker in (first, second):
                    if worker is not None and worker.process.poll() is None:
                        worker.kill()
        report("PostgreSQL outage", traffic, stored, failed_writes=int(errors))
        assert all(stored[i] == (1, True, True) for i in acknowledged)
    finally:
        server.stop("immediate")
        server.remove()


def test_a_reply_url_that_never_answers_sends_detections_to_the_dead_letter_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Bounded retries for each detection, then the dead-letter topic; records flow on meanwhile."""
    ks, _ = save_ks_and_iforest(tmp_path)
    config = tmp_path / "infersight.yaml"
    closed = "http://127.0.0.1:9/detections"  # the discard port: nothing listens
    model = {"namespace": "models", "inferenceservice": "iris"}
    model["detectors"] = [{"name": "ks", "kind": "drift", "uri": f"file://{ks}", "window": {"size": 20}}]
    config.write_text(yaml.safe_dump({"detections": {"reply_url": closed}, "models": [model]}))
    _, held_out = breast_cancer()
    topic = f"test.replydown.{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_CONFIG": str(config),
        "INFERSIGHT_STORE__URL": store,
        "INFERSIGHT_WORKER__GROUP_ID": f"reply-{uuid.uuid4().hex[:6]}",
        "INFERSIGHT_DETECTIONS__REPLY_RETRIES": "2",
        "INFERSIGHT_DETECTIONS__REPLY_TIMEOUT_SECONDS": "1",
    }
    ids = [str(uuid.uuid4()) for _ in range(200)]
    with (
        run_ingest(kafka_bootstrap, topic, tmp_path) as ingest,
        run_worker(kafka_bootstrap, topic, tmp_path, **env) as worker,
        httpx.Client(base_url=ingest.url, timeout=30) as client,
    ):
        started = time.monotonic()
        for request_id, row in zip(ids, np.concatenate([held_out, held_out])[: len(ids)], strict=True):
            for kind, body in (
                ("request", {"instances": [row.tolist()]}),
                ("response", {"predictions": [1]}),
            ):
                headers = {
                    "Content-Type": "application/json",
                    "Ce-Specversion": "1.0",
                    "Ce-Id": request_id,
                    "Ce-Source": "test",
                    "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
                    "Ce-Namespace": "models",
                    "Ce-Inferenceservicename": "iris",
                }
                assert client.post("/", headers=headers, content=json.dumps(body)).status_code == 202
        # The stream does not wait for the reply URL: every inference is stored promptly.
        stored = wait_stored(store, set(ids), timeout=60, halves=2)
        stored_after = time.monotonic() - started
        wait_until(
            lambda: metric(worker, "infersight_deadletters_total") >= len(ids) // 20, 90, "dead letters"
        )
        detections = [dict(r.headers) for r in read_topic(kafka_bootstrap, f"{topic}.detections")]  # type: ignore[attr-defined]
        dead = [dict(r.headers) for r in read_topic(kafka_bootstrap, f"{topic}.deadletter")]  # type: ignore[attr-defined]
        reasons = [headers["infersight-deadletter-reason"].decode() for headers in dead]
        whole, lost, duplicated = count_stored(set(ids), stored)
        report_fault(
            "reply URL down",
            len(ids),
            len(ids),
            whole,
            lost,
            duplicated,
            stored_after_s=round(stored_after, 1),
            drift_tests=len(detections),
            dead_letters=len(dead),
        )
        assert len(detections) == len(ids) // 20
        assert len(dead) == len(detections) and all(reason.startswith("reply_failed") for reason in reasons)
        assert {headers["ce_id"] for headers in dead} == {headers["ce_id"] for headers in detections}
        assert {headers["ce_type"] for headers in detections} == {b"io.infersight.detection.drift"}
