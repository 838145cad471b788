"""A worker that must not skip: a broker away at start, a detector that raises, a record the database refuses.

Each runs real processes (ingest, worker, broker, PostgreSQL) and counts end to end what was
sent, acknowledged and stored.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from infersight.config import LocalKafkaConfig
from infersight.localkafka import LocalKafka
from tests.detectors_data import save_ks_and_iforest
from tests.helpers import (
    FAST_WORKER,
    committed_offsets,
    count_stored,
    free_port,
    read_topic,
    report_fault,
    run_ingest,
    run_worker,
    start_worker,
    stop,
    stored_inferences,
    wait_stored,
    wait_until,
)
from tests.postgres import create_database
from tests.test_ingest import KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE, kserve_headers
from tests.traffic import Traffic

pytestmark = pytest.mark.slow


def send_pairs(url: str, ids: list[str], request: bytes = KSERVE_V1_REQUEST) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for request_id in ids:
            for kind, body in (("request", request), ("response", KSERVE_V1_RESPONSE)):
                answer = client.post("/", headers=kserve_headers(request_id, kind), content=body)
                assert answer.status_code == 202, answer.text


def test_a_worker_started_before_its_broker_waits_for_it(tmp_path: Path) -> None:
    """The broker is not there when the worker starts: it waits, says so, then stores everything."""
    broker = LocalKafka(
        LocalKafkaConfig(state_dir=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    )
    topic = f"test.latebroker.{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    worker = start_worker(
        broker.bootstrap_servers, topic, tmp_path, INFERSIGHT_STORE__URL=store, **FAST_WORKER
    )
    try:
        wait_until(lambda: "waiting for Kafka at" in worker.log.read_text(), 60, "the worker to wait")
        assert worker.process.poll() is None, worker.log.read_text()
        broker.start()
        try:
            with run_ingest(broker.bootstrap_servers, topic, tmp_path) as ingest:
                ids = [str(uuid.uuid4()) for _ in range(50)]
                send_pairs(ingest.url, ids)
                stored = wait_stored(store, set(ids), timeout=120, halves=2)
            assert worker.process.poll() is None, worker.log.read_text()
            whole, lost, duplicated = count_stored(set(ids), stored)
            report_fault("broker away at start", len(ids), len(ids), whole, lost, duplicated)
            assert all(stored[i] == (1, True, True) for i in ids)
        finally:
            stop(worker.process, timeout=30)
            broker.stop()
    finally:
        if worker.process.poll() is None:
            worker.kill()


def test_a_detector_that_raises_stops_the_worker_without_committing_past_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """An IForest fitted on 30 features given 4-feature rows raises in scikit-learn: never skipped."""
    _, iforest = save_ks_and_iforest(tmp_path)
    config = tmp_path / "infersight.yaml"
    model = {"namespace": "models", "inferenceservice": "iris"}
    model["detectors"] = [
        {"name": "iforest", "kind": "outlier", "uri": f"file://{iforest}", "allow_unsafe_loading": True}
    ]
    config.write_text(yaml.safe_dump({"models": [model]}))
    topic = f"test.raising.{uuid.uuid4().hex[:8]}"
    group = f"raising-{uuid.uuid4().hex[:6]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {**FAST_WORKER, "INFERSIGHT_STORE__URL": store, "INFERSIGHT_WORKER__GROUP_ID": group}
    ids = [str(uuid.uuid4()) for _ in range(20)]
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        send_pairs(ingest.url, ids)
        failing = start_worker(kafka_bootstrap, topic, tmp_path, INFERSIGHT_CONFIG=str(config), **env)
        try:
            failing.process.wait(timeout=120)
        finally:
            if failing.process.poll() is None:
                failing.kill()
        log = failing.log.read_text()
        assert failing.process.returncode != 0, log
        stops = [line for line in log.splitlines() if "worker stopped" in line or "the worker stops" in line]
        assert stops and all("ValueError" in line for line in stops), log
        # A request alone may be committed (it waits in the state); no offset passes a response,
        # the half whose record reached the detector.
        first_response: dict[int, int] = {}
        for record in read_topic(kafka_bootstrap, topic):
            if dict(record.headers)["ce_type"].endswith(b".response"):  # type: ignore[attr-defined]
                partition = record.partition  # type: ignore[attr-defined]
                first_response[partition] = min(first_response.get(partition, 1 << 62), record.offset)  # type: ignore[attr-defined]
        committed = committed_offsets(kafka_bootstrap, group, topic)
        assert all(offset <= first_response[tp.partition] for tp, offset in committed.items()), committed
        assert stored_inferences(store) == {}
        # Without the detector, a worker of the same group reads everything again and stores it.
        with run_worker(kafka_bootstrap, topic, tmp_path, **env):
            stored = wait_stored(store, set(ids), timeout=120, halves=2)
    whole, lost, duplicated = count_stored(set(ids), stored)
    report_fault(
        "detector raises",
        len(ids),
        len(ids),
        whole,
        lost,
        duplicated,
        committed_before_fix=sum(committed.values()),
    )
    assert all(stored[i] == (1, True, True) for i in ids)


def test_a_record_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    kafka_bootstrap: str, postgres_server: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses a request id longer than its column; that inference alone goes aside."""
    store = create_database(postgres_server, f"refuse_{uuid.uuid4().hex[:8]}")
    topic = f"test.refused.{uuid.uuid4().hex[:8]}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_STORE__URL": store,
        "INFERSIGHT_WORKER__GROUP_ID": f"ref-{uuid.uuid4().hex[:6]}",
    }
    good = [str(uuid.uuid4()) for _ in range(40)]
    refused = "x" * 300
    with (
        run_ingest(kafka_bootstrap, topic, tmp_path) as ingest,
        run_worker(kafka_bootstrap, topic, tmp_path, **env) as worker,
    ):
        send_pairs(ingest.url, [*good[:20], refused, *good[20:]])
        stored = wait_stored(store, set(good), timeout=120, halves=2)
        wait_until(lambda: len(read_topic(kafka_bootstrap, f"{topic}.deadletter")) >= 2, 60, "dead letters")
        dead = read_topic(kafka_bootstrap, f"{topic}.deadletter")
        assert worker.process.poll() is None
    whole, lost, duplicated = count_stored(set(good), stored)
    report_fault("record refused by the database", len(good) + 1, len(good) + 1, whole, lost, duplicated)
    assert all(stored[i] == (1, True, True) for i in good) and refused not in stored
    headers = [dict(record.headers) for record in dead]  # type: ignore[attr-defined]
    assert {h["ce_id"] for h in headers} == {refused.encode()}
    assert {h["ce_type"] for h in headers} == {
        b"org.kubeflow.serving.inference.request",
        b"org.kubeflow.serving.inference.response",
    }
    reasons = {h["infersight-deadletter-reason"].decode() for h in headers}
    assert all(reason.startswith("store_refused: StringDataRightTruncation") for reason in reasons), reasons
    bodies = {record.value for record in dead}  # type: ignore[attr-defined]
    assert bodies == {KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE}  # as the model server sent them


def test_exactly_once_commits_records_dead_letters_and_offsets_together(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With Kafka transactions: a read_committed consumer sees each record once, after a SIGKILL too."""
    topic = f"test.eos.{uuid.uuid4().hex[:8]}"
    records = f"{topic}.records"
    group = f"eos-{uuid.uuid4().hex[:6]}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_STORE__ENABLED": "false",
        "INFERSIGHT_WORKER__GROUP_ID": group,
        "INFERSIGHT_WORKER__RECORDS_TOPIC": records,
        "INFERSIGHT_WORKER__PROCESSING_GUARANTEE": "exactly-once",
    }
    first_ids = [str(uuid.uuid4()) for _ in range(100)]
    second_ids = [str(uuid.uuid4()) for _ in range(100)]
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        first = start_worker(kafka_bootstrap, topic, tmp_path, **env)
        try:
            send_pairs(ingest.url, first_ids)
            wait_until(lambda: committed_records(kafka_bootstrap, records) >= 100, 120, "first records")
        finally:
            first.kill()  # SIGKILL: an open transaction, if any, is aborted by the broker
        send_pairs(ingest.url, second_ids)
        with run_worker(kafka_bootstrap, topic, tmp_path, **env):
            wait_until(lambda: committed_records(kafka_bootstrap, records) >= 200, 120, "all records")
    seen = [json.loads(value)["request_id"] for value in committed_values(kafka_bootstrap, records)]
    sent = set(first_ids + second_ids)
    report_fault(
        "exactly-once, SIGKILL",
        len(sent),
        len(sent),
        len(sent & set(seen)),
        len(sent - set(seen)),
        len(seen) - len(set(seen)),
    )
    assert sorted(seen) == sorted(sent), "a record is missing or came twice"


def committed_values(bootstrap: str, topic: str, quiet_seconds: float = 3.0) -> list[bytes]:
    """Every committed record value of ``topic`` (isolation.level=read_committed), until it goes quiet."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        values: list[bytes] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_seconds:
            messages = [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
            if messages:
                values.extend(m.value() for m in messages)
                quiet_since = time.monotonic()
        return values
    finally:
        consumer.close()


def committed_records(bootstrap: str, topic: str) -> int:
    return len(committed_values(bootstrap, topic, quiet_seconds=1.0))


def test_a_worker_killed_at_twenty_random_moments_loses_and_repeats_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGKILL at random moments of a two-minute stream, each time restarted at once."""
    topic = f"test.kills.{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_STORE__URL": store,
        "INFERSIGHT_WORKER__GROUP_ID": f"kills-{uuid.uuid4().hex[:6]}",
    }
    chance = random.Random(20)
    moments = sorted(chance.uniform(2, 115) for _ in range(20))
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        worker = start_worker(kafka_bootstrap, topic, tmp_path, **env)
        try:
            with Traffic(ingest.url, pairs=True, senders=2, pause=0.02) as traffic:
                started = time.monotonic()
                for moment in moments:
                    time.sleep(max(0.0, started + moment - time.monotonic()))
                    worker.kill()
                    worker = start_worker(kafka_bootstrap, topic, tmp_path, **env)
                time.sleep(max(0.0, started + 120 - time.monotonic()))
            acknowledged = traffic.acknowledged()
            stored = wait_stored(store, acknowledged, timeout=180, halves=2)
        finally:
            if worker.process.poll() is None:
                worker.kill()
    whole, lost, duplicated = count_stored(acknowledged, stored)
    report_fault("20 SIGKILLs in 2 minutes", len(traffic.answers), len(acknowledged), whole, lost, duplicated)
    assert lost == 0 and duplicated == 0
    assert set(stored) <= set(traffic.answers)


def test_three_workers_joining_and_leaving_under_traffic_store_everything_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Workers come and go (SIGTERM and SIGKILL) while traffic flows; the group ends with one."""
    topic = f"test.churn.{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        **FAST_WORKER,
        "INFERSIGHT_STORE__URL": store,
        "INFERSIGHT_WORKER__GROUP_ID": f"churn-{uuid.uuid4().hex[:6]}",
    }

    def some_stored(count: int) -> Callable[[], bool]:
        return lambda: len(stored_inferences(store)) >= count

    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        workers = [start_worker(kafka_bootstrap, topic, tmp_path, **env)]
        try:
            with Traffic(ingest.url, pairs=True, senders=2, pause=0.02) as traffic:
                wait_until(some_stored(50), 90, "the first worker storing")
                workers += [start_worker(kafka_bootstrap, topic, tmp_path, **env) for _ in range(2)]
                wait_until(some_stored(300), 90, "three workers storing")
                stop(workers.pop(0).process, timeout=30)  # leaves cleanly
                wait_until(some_stored(500), 90, "two workers storing")
                workers.pop(0).kill()  # leaves without a word
                workers.append(start_worker(kafka_bootstrap, topic, tmp_path, **env))
                wait_until(some_stored(800), 120, "after the churn")
                stop(workers.pop(0).process, timeout=30)
                wait_until(some_stored(1000), 120, "one worker left")
            acknowledged = traffic.acknowledged()
            stored = wait_stored(store, acknowledged, timeout=180, halves=2)
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.kill()
    whole, lost, duplicated = count_stored(acknowledged, stored)
    report_fault("workers join and leave", len(traffic.answers), len(acknowledged), whole, lost, duplicated)
    assert lost == 0 and duplicated == 0
