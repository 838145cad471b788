"""Dashboards and alert rules against a real Prometheus scraping a real ingest and worker.

One model gets a saved KSDrift, IForest and AdversarialAE. Its traffic drifts half-way, holds far-away
points (a fifth of the drifted half), some events that arrive ten minutes late, a canary endpoint
and feedback; beside it come requests the ingest must refuse, bodies that do not decode and
payloads of no known protocol (both kept raw). Prometheus scrapes both processes every second with a copy
of the alert rules whose windows and hold times are short. Then every panel query of every
dashboard, every template variable and every alert rule's signal must return series, and the
alerts this traffic causes (drift first) must fire while the others stay quiet.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from infersight.monitoring import alerts
from infersight.monitoring.output import dashboard_models, write_rules
from infersight.monitoring.promql import API_JOB, INGEST_JOB, WORKER_JOB
from tests.detectors_data import breast_cancer, save_ks_and_iforest
from tests.helpers import run_ingest, run_worker, serve
from tests.prometheus import alerts as active_alerts
from tests.prometheus import instant, label_values, promtool, run_prometheus, substitute

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "clinic"
MODEL = "cancer"
WINDOW = 100
LATE = range(100, 120)  # these requests (and responses) carry a ce-time ten minutes old
TEST_WINDOWS = alerts.Windows(rate="3m", quiet="20s", history="1h", hold="0s")
#: What Grafana puts in the queries for "this model, every endpoint and detector, the last 10 minutes".
SELECTION = {
    "namespace": NAMESPACE,
    "inferenceservice": MODEL,
    "component": ".*",
    "endpoint": ".*",
    "detector": ".*",
    "__rate_interval": TEST_WINDOWS.rate,
    "__range": "10m",
    "datasource": "prometheus",
}
#: The alerts this traffic must raise; the rest must stay quiet.
EXPECTED_FIRING = {
    "InfersightDriftDetected",
    "InfersightOutlierRateHigh",
    "InfersightAdversarialRateHigh",
    "InfersightIngestRejecting",
    "InfersightEventLagHigh",
    "InfersightModelSilent",
    "InfersightDeadLettersGrowing",
}


def save_detectors(folder: Path) -> dict[str, Path]:
    """KSDrift and IForest on the reference data, and an AdversarialAE guarding a small classifier."""
    import tensorflow as tf
    import tf_keras as keras
    from alibi_detect.ad import AdversarialAE
    from alibi_detect.saving import save_detector

    save_ks_and_iforest(folder)
    reference, _ = breast_cancer()

    tf.random.set_seed(0)
    labels = (reference[:, 0] > np.median(reference[:, 0])).astype(np.int64)
    classifier = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(30,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    classifier.fit(reference, labels, epochs=20, batch_size=32, verbose=0)
    encoder = keras.Sequential(
        [keras.layers.InputLayer(input_shape=(30,)), keras.layers.Dense(16, activation="relu")]
    )
    decoder = keras.Sequential([keras.layers.InputLayer(input_shape=(16,)), keras.layers.Dense(30)])
    adversarial = AdversarialAE(encoder_net=encoder, decoder_net=decoder, model=classifier)
    adversarial.fit(reference, epochs=10, batch_size=32, verbose=False)
    adversarial.infer_threshold(reference, threshold_perc=95)
    save_detector(adversarial, folder / "adversarial")
    return {"ks": folder / "ks", "iforest": folder / "iforest", "adversarial": folder / "adversarial"}


def write_config(path: Path, saved: dict[str, Path]) -> None:
    detectors: list[dict[str, Any]] = [
        {"name": "ks", "kind": "drift", "uri": f"file://{saved['ks']}", "window": {"size": WINDOW}},
        {"name": "iforest", "kind": "outlier", "uri": f"file://{saved['iforest']}"},
        {"name": "adversarial-ae", "kind": "adversarial", "uri": f"file://{saved['adversarial']}"},
    ]
    for detector in detectors[1:]:
        detector["allow_unsafe_loading"] = True
    path.write_text(
        yaml.safe_dump(
            {"models": [{"namespace": NAMESPACE, "inferenceservice": MODEL, "detectors": detectors}]}
        )
    )


def prometheus_config(ingest_url: str, worker_metrics_url: str, api_url: str, rules: Path) -> dict[str, Any]:
    """The compose stack's Prometheus configuration, pointed at these processes, scraping every second."""
    config: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yaml").read_text())
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules)]
    targets = {
        INGEST_JOB: ingest_url.removeprefix("http://"),
        WORKER_JOB: worker_metrics_url.removeprefix("http://").removesuffix("/metrics"),
        API_JOB: api_url.removeprefix("http://"),
    }
    assert {job["job_name"] for job in config["scrape_configs"]} == set(targets)
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


def kserve_headers(
    request_id: str, kind: str, endpoint: str, late: bool, model: str = MODEL
) -> dict[str, str]:
    sent = time.time() - (600 if late else 0)
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": request_id,
        "Ce-Source": f"http://{model}-predictor.{NAMESPACE}/",
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent)),
        "Ce-Inferenceservicename": model,
        "Ce-Namespace": NAMESPACE,
        "Ce-Component": "predictor",
        "Ce-Endpoint": endpoint,
    }


def send_inference(
    client: httpx.Client,
    request_id: str,
    request: dict[str, Any],
    response: dict[str, Any],
    *,
    endpoint: str = "default",
    late: bool = False,
    model: str = MODEL,
) -> None:
    for kind, body in (("request", request), ("response", response)):
        answer = client.post(
            "/", headers=kserve_headers(request_id, kind, endpoint, late, model), content=json.dumps(body)
        )
        assert answer.status_code == 202, answer.text


def send_traffic(client: httpx.Client) -> None:
    _, held_out = breast_cancer()
    rows = np.concatenate([held_out[: 2 * WINDOW], held_out[: 2 * WINDOW] + 1.0])
    far_away = range(2 * WINDOW, 4 * WINDOW, 5)  # a fifth of the drifted half
    rows[list(far_away)] += 12.0
    ids = [f"req-{index:04d}-{uuid.uuid4().hex[:6]}" for index in range(len(rows))]
    for index, (request_id, row) in enumerate(zip(ids, rows, strict=True)):
        prediction = int(row.sum() > 0)
        send_inference(
            client,
            request_id,
            {"instances": [row.tolist()]},
            {"predictions": [prediction]},
            late=index in LATE,
        )
    for index, row in enumerate(held_out[:20]):
        send_inference(
            client,
            f"canary-{index}-{uuid.uuid4().hex[:6]}",
            {"instances": [row.tolist()]},
            {"predictions": [int(row.sum() > 0)]},
            endpoint="canary",
        )
    # A client of the canary that sends no tensor: kept raw, and the detectors cannot use it.
    for index in range(3):
        send_inference(
            client, f"raw-{index}-{uuid.uuid4().hex[:6]}", {"text": "hello"}, {"answer": 1}, endpoint="canary"
        )
    # A v2 tensor whose data does not fit its shape: the worker keeps it raw and counts it undecodable.
    for index in range(3):
        bad = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}
        answer = client.post(
            "/",
            headers=kserve_headers(
                f"dead-{index}-{uuid.uuid4().hex[:6]}", "request", "default", False, "broken"
            ),
            content=json.dumps(bad),
        )
        assert answer.status_code == 202, answer.text
    # Feedback for the first forty: true labels that agree with three in four predictions.
    for index, request_id in enumerate(ids[:40]):
        label = int(rows[index].sum() > 0) if index % 4 else 1 - int(rows[index].sum() > 0)
        answer = client.post(
            "/",
            headers={
                "Content-Type": "application/json",
                "Ce-Specversion": "1.0",
                "Ce-Id": f"fb-{request_id}",
                "Ce-Source": "/labelling",
                "Ce-Type": "io.infersight.feedback",
                "Ce-Inferenceservicename": MODEL,
                "Ce-Namespace": NAMESPACE,
            },
            content=json.dumps({"request_id": request_id, "label": label}),
        )
        assert answer.status_code == 202, answer.text
    # Requests the ingest must refuse: an envelope without its id (a body cut short is data, taken).
    for index in range(30):
        headers = kserve_headers(f"no-id-{index}", "request", "default", False)
        del headers["Ce-Id"]
        answer = client.post("/", headers=headers, content=b'{"instances": [[1, 2]]}')
        assert answer.status_code == 400, answer.text


def wait_for_drift(metrics_url: str, timeout: float = 120) -> None:
    wanted = (
        f'infersight_drift_detected{{component="predictor",detector="ks",endpoint="default",'
        f'inferenceservice="{MODEL}",'
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(metrics_url, timeout=10).text
        if f'{wanted}namespace="{NAMESPACE}",revision=""}} 1.0' in text:
            return
        time.sleep(1)
    raise AssertionError(f"the worker never reported drift:\n{text}")


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expression) for every query target of every dashboard."""
    found = []
    for uid, model in dashboard_models().items():
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                found.append((uid, panel["title"], target["expr"]))
    return found


def variable_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, variable, metric selector, label) for every ``label_values`` variable."""
    found = []
    for uid, model in dashboard_models().items():
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                inner = variable["query"].removeprefix("label_values(").removesuffix(")")
                selector, label = inner.rsplit(",", 1)
                found.append((uid, variable["name"], selector, label.strip()))
    return found


def poll(check: Any, timeout: float) -> Any:
    """``check()`` until it returns something true, or its last answer after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def test_dashboards_and_alerts_on_a_real_prometheus(kafka_bootstrap: str, tmp_path: Path) -> None:
    saved = save_detectors(tmp_path / "detectors")
    config = tmp_path / "infersight.yaml"
    write_config(config, saved)
    rules = write_rules(tmp_path / "rules" / "infersight-rules.yaml", TEST_WINDOWS)
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    topic = f"test.prom.{uuid.uuid4().hex[:8]}"
    with (
        run_ingest(kafka_bootstrap, topic, tmp_path) as ingest,
        run_worker(
            kafka_bootstrap,
            topic,
            tmp_path,
            INFERSIGHT_CONFIG=str(config),
            INFERSIGHT_WORKER__GROUP_ID=f"test-{uuid.uuid4().hex[:6]}",
            INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
            INFERSIGHT_WORKER__PAIRING_TIMEOUT_SECONDS="5",
        ) as worker,
        # The query API over the worker's store: its /metrics judges the canary endpoint.
        serve(
            "api",
            tmp_path,
            {
                **os.environ,
                "INFERSIGHT_STORE__URL": f"sqlite:///{tmp_path / 'store.db'}",
                "INFERSIGHT_API__CANARY_WINDOW_SECONDS": "20",
                "INFERSIGHT_API__CANARY_REFRESH_SECONDS": "10",
            },
            "/healthz",
        ) as (_, api_url, _),
        run_prometheus(
            prometheus_config(ingest.url, worker.metrics_url, api_url, rules), tmp_path / "prometheus"
        ) as prom,
        httpx.Client(base_url=ingest.url, timeout=30) as client,
    ):
        assert poll(lambda: len(instant(prom, "up == 1")) == 3, 120), instant(prom, "up")
        # A few inferences first, as a model's traffic starts: every series then has a scraped sample
        # before the burst, so that rate() sees the burst as an increase (a series first scraped
        # after a burst handled between two scrapes would show none, and the alerts would not fire).
        _, held_out = breast_cancer()
        for index, row in enumerate(held_out[-5:]):
            send_inference(client, f"warm-{index}-{uuid.uuid4().hex[:6]}", {"instances": [row.tolist()]},
                           {"predictions": [int(row.sum() > 0)]})  # fmt: skip
        warm = (
            "infersight_event_lag_seconds_count",
            "infersight_outliers_total",
            "infersight_adversarial_total",
        )
        assert poll(lambda: all(instant(prom, name) for name in warm), 60), (
            "no series after the first inferences"
        )
        send_traffic(client)
        wait_for_drift(worker.metrics_url)

        firing = poll(
            lambda: (
                {a["labels"]["alertname"] for a in active_alerts(prom) if a["state"] == "firing"}
                >= EXPECTED_FIRING
            ),
            120,
        )
        states = {(a["labels"]["alertname"], a["state"]) for a in active_alerts(prom)}
        assert firing, f"expected {sorted(EXPECTED_FIRING)} firing, got {sorted(states)}"
        drift = [a for a in active_alerts(prom) if a["labels"]["alertname"] == "InfersightDriftDetected"]
        assert {
            (a["labels"]["namespace"], a["labels"]["inferenceservice"], a["labels"]["detector"])
            for a in drift
        } == {(NAMESPACE, MODEL, "ks")}
        assert all(a["annotations"]["summary"] and a["annotations"]["description"] for a in drift)
        assert ("InfersightTargetDown", "firing") not in states

        empty_signals = [r.alert for r in alerts.rules(TEST_WINDOWS) if not instant(prom, r.signal)]
        assert not empty_signals, f"alert signals without series: {empty_signals}"

        empty_panels = [
            f"{uid} / {title}: {expr}"
            for uid, title, expr in panel_queries()
            if not instant(prom, substitute(expr, SELECTION))
        ]
        assert not empty_panels, "panel queries without series:\n" + "\n".join(empty_panels)

        for uid, name, selector, label in variable_queries():
            values = label_values(prom, label, substitute(selector, SELECTION))
            expected = {
                "namespace": NAMESPACE,
                "inferenceservice": MODEL,
                "component": "predictor",
                "endpoint": "canary",
            }.get(name, "ks")
            assert expected in values, f"{uid} ${name}: {values}"
