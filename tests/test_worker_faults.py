"""A worker killed mid-stream, and a worker leaving its group: no pending half, no detector state is lost."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from sklearn.datasets import load_iris

from infersight.config import KafkaConfig
from infersight.kafkaclient import ensure_topics
from tests.helpers import (
    Worker,
    committed_offsets,
    read_topic,
    report_fault,
    run_ingest,
    start_worker,
    topic_size,
    wait_until,
)
from tests.test_ingest import KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE, kserve_headers

pytestmark = pytest.mark.slow

#: Two models on each of the 3 partitions (the ingest's murmur2 of ``models/<name>``), so that
#: whichever partitions a worker is given, it has models to pair.
MODELS = ["iris", "wine", "digits", "housing", "spam", "fraud"]
#: Instances sent per model, to check the online detector's clock against.
SENT: Counter[str] = Counter()


def post(url: str, event_id: str, kind: str, model: str) -> None:
    headers = kserve_headers(event_id, kind, **{"Ce-Inferenceservicename": model})
    body = KSERVE_V1_REQUEST if kind == "request" else KSERVE_V1_RESPONSE
    assert httpx.post(url, headers=headers, content=body, timeout=30).status_code == 202
    if kind == "request":
        SENT[model] += len(json.loads(KSERVE_V1_REQUEST)["instances"])


def records_by_id(bootstrap: str, topic: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for record in read_topic(bootstrap, topic):
        value = json.loads(record.value)  # type: ignore[attr-defined]
        found.setdefault(value["request_id"], []).append(value["mode"])
    return found


def wait_paired(bootstrap: str, topic: str, ids: list[str], timeout: float = 120) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        found = records_by_id(bootstrap, topic)
        if all("paired" in found.get(event_id, []) for event_id in ids):
            return found
        if time.monotonic() > deadline:
            missing = [event_id for event_id in ids if "paired" not in found.get(event_id, [])]
            raise AssertionError(f"{len(missing)} of {len(ids)} never paired")
        time.sleep(0.5)


def report_pairs(scenario: str, ids: list[str], found: dict[str, list[str]]) -> None:
    paired = [event_id for event_id in ids if "paired" in found.get(event_id, [])]
    duplicated = sum(1 for event_id in ids if len(found.get(event_id, [])) > 1)
    report_fault(scenario, len(ids), len(ids), len(paired), len(ids) - len(paired), duplicated)


def pending(worker: Worker) -> float:
    try:
        text = httpx.get(worker.metrics_url, timeout=5).text
    except httpx.HTTPError:
        return -1
    match = re.search(r"^infersight_pending_halves (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else -1


def handled(worker: Worker, model: str = "") -> float:
    """Records this worker has handed on so far, of one model or of all."""
    try:
        text = httpx.get(worker.metrics_url, timeout=5).text
    except httpx.HTTPError:
        return 0
    series = re.findall(r"^infersight_records_total\{([^}]*)\} (\S+)$", text, re.MULTILINE)
    return sum(
        float(value) for labels, value in series if f'inferenceservice="{model}"' in labels or not model
    )


def wait_pending(workers: list[Worker], count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while sum(max(0.0, pending(worker)) for worker in workers) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"workers never held {count} pending halves")
        time.sleep(0.5)


def wait_committed(bootstrap: str, group: str, topic: str) -> None:
    """Every offset of ``topic`` committed by ``group``: from then on, only the pairing state holds
    the halves that wait."""
    wait_until(
        lambda: sum(committed_offsets(bootstrap, group, topic).values()) == topic_size(bootstrap, topic),
        60,
        f"{group} to commit every offset of {topic}",
    )


def test_the_models_cover_every_partition() -> None:
    from kafka.partitioner.default import murmur2

    partitions = Counter((murmur2(f"models/{model}".encode()) & 0x7FFFFFFF) % 3 for model in MODELS)
    assert partitions == {0: 2, 1: 2, 2: 2}


def setup(bootstrap: str) -> tuple[str, str, dict[str, str]]:
    topic = f"test.faults.{uuid.uuid4().hex[:8]}"
    records = f"{topic}.records"
    ensure_topics(KafkaConfig(bootstrap_servers=bootstrap, partitions=3), [records])
    env = {
        "INFERSIGHT_WORKER__GROUP_ID": f"test-faults-{uuid.uuid4().hex[:6]}",
        "INFERSIGHT_WORKER__RECORDS_TOPIC": records,
        "INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS": "600",
        "INFERSIGHT_WORKER__BATCH_SECONDS": "0.2",
        "INFERSIGHT_WORKER__REBALANCE_TIMEOUT_SECONDS": "10",
    }
    return topic, records, env


def test_killed_worker_loses_no_pending_half(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, records, env = setup(kafka_bootstrap)
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        first = start_worker(kafka_bootstrap, topic, tmp_path, **env)
        second = None
        try:
            probe = str(uuid.uuid4())
            post(ingest.url, probe, "request", "iris")
            post(ingest.url, probe, "response", "iris")
            wait_paired(kafka_bootstrap, records, [probe])

            ids = [str(uuid.uuid4()) for _ in range(24)]
            for index, event_id in enumerate(ids):
                post(ingest.url, event_id, "request", MODELS[index % len(MODELS)])
            wait_pending([first], len(ids))
            wait_committed(kafka_bootstrap, env["INFERSIGHT_WORKER__GROUP_ID"], topic)
            first.kill()

            second = start_worker(kafka_bootstrap, topic, tmp_path, **env)
            for index, event_id in enumerate(ids):
                post(ingest.url, event_id, "response", MODELS[index % len(MODELS)])
            found = wait_paired(kafka_bootstrap, records, ids)
            report_pairs("worker SIGKILL with pending halves", ids, found)
            assert all(found[event_id].count("paired") == 1 for event_id in ids)
        finally:
            for worker in (first, second):
                if worker is not None and worker.process.poll() is None:
                    worker.kill()


def online_detector(folder: Path) -> Path:
    """A configuration giving the iris model an online drift detector that saves its state every second."""
    reference = folder / "iris.npy"
    np.save(reference, load_iris().data.astype(np.float32))
    detector = {
        "name": "online",
        "kind": "drift",
        "algorithm": "LSDDDriftOnline",
        "reference": f"file://{reference}",
    }
    detector["parameters"] = {"ert": 100, "window_size": 10, "n_bootstraps": 300, "verbose": False}
    detector["window"] = {"size": 20}
    config = folder / "infersight.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "detections": {"state_save_seconds": 1},
                "models": [{"namespace": "models", "inferenceservice": "iris", "detectors": [detector]}],
            }
        )
    )
    return config


def detector_clock(state_root: Path) -> int:
    """The ``t`` the iris model's online detector last saved: how many instances it has seen."""
    saved = sorted(state_root.glob("models/iris/**/online/*.npz"))
    return int(np.load(saved[0])["t"]) if saved else -1


def test_pairs_and_detector_state_move_when_a_worker_leaves(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic, records, env = setup(kafka_bootstrap)
    env["INFERSIGHT_CONFIG"] = str(online_detector(tmp_path))
    SENT.clear()
    with run_ingest(kafka_bootstrap, topic, tmp_path) as ingest:
        workers = [start_worker(kafka_bootstrap, topic, tmp_path, **env) for _ in range(2)]
        try:
            # Probe until both workers have joined the group and each pairs some models' traffic.
            deadline = time.monotonic() + 120
            while min(handled(worker) for worker in workers) == 0:
                assert time.monotonic() < deadline, "the two workers never shared the partitions"
                probes = [str(uuid.uuid4()) for _ in MODELS]
                for model, probe in zip(MODELS, probes, strict=True):
                    post(ingest.url, probe, "response", model)
                    post(ingest.url, probe, "request", model)
                wait_paired(kafka_bootstrap, records, probes)

            # The worker that now has the iris model (and its detector) is the one to leave.
            before = [handled(worker, "iris") for worker in workers]
            probe = str(uuid.uuid4())
            post(ingest.url, probe, "request", "iris")
            post(ingest.url, probe, "response", "iris")
            wait_paired(kafka_bootstrap, records, [probe])
            owner = next(i for i, worker in enumerate(workers) if handled(worker, "iris") > before[i])

            ids = [str(uuid.uuid4()) for _ in range(30)]
            for index, event_id in enumerate(ids):
                post(ingest.url, event_id, "request", MODELS[index % len(MODELS)])
            wait_pending(workers, len(ids))
            wait_committed(kafka_bootstrap, env["INFERSIGHT_WORKER__GROUP_ID"], topic)
            leaving = workers.pop(owner)
            leaving.process.terminate()
            leaving.process.wait(timeout=60)
            left_at = detector_clock(tmp_path / "detector-state")
            assert 0 < left_at <= SENT["iris"]

            for index, event_id in enumerate(ids):
                post(ingest.url, event_id, "response", MODELS[index % len(MODELS)])
            found = wait_paired(kafka_bootstrap, records, ids)
            report_pairs("worker leaves with pending halves", ids, found)
            assert all(found[event_id] == ["paired"] for event_id in ids)
            # The remaining worker carried the detector on from the saved state: every iris instance
            # counted once, before and after the move.
            deadline = time.monotonic() + 60
            while detector_clock(tmp_path / "detector-state") != SENT["iris"]:
                assert time.monotonic() < deadline, (
                    left_at,
                    detector_clock(tmp_path / "detector-state"),
                    SENT,
                )
                time.sleep(0.5)
        finally:
            for worker in workers:
                if worker.process.poll() is None:
                    worker.kill()
