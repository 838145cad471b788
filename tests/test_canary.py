"""Canary analysis over a real store: revisions read from KServe pod names, judged window by window."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from infersight.cli.app import app as cli
from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE, InferenceRecord, ModelRef, RawEvent
from infersight.sinks.store import SqlStore
from infersight.sinks.store.filters import PayloadFilter
from infersight.sinks.store.query import list_payloads, list_revisions
from tests.store_data import BASE_TIME, half, kserve_event, outlier_score, v1_request, v1_response

# The model's endpoint is empty, as current KServe controllers send it: only the pod names differ.
IRIS = ModelRef("models", "iris", "", "predictor")
BASELINE_POD = "iris-predictor-00001-deployment-6d8f7c9b5-k2m4p"
CANDIDATE_POD = "iris-predictor-00002-deployment-7c9f8b6d5-x2x4p"
WINDOWS, PER_WINDOW, WINDOW_SECONDS = 50, 60, 60


def from_pod(event: RawEvent, pod: str) -> RawEvent:
    return RawEvent(attributes={**event.attributes, "source": pod}, data=event.data)


def inference(request_id: str, pod: str, row: list[float], at_s: float) -> InferenceRecord:
    at = BASE_TIME + timedelta(seconds=at_s)
    prediction = int(row[0] > 0) + int(row[2] > 0)
    request = from_pod(kserve_event(KSERVE_REQUEST, request_id, v1_request([row]), IRIS, at), pod)
    response = from_pod(kserve_event(KSERVE_RESPONSE, request_id, v1_response([prediction]), IRIS, at), pod)
    return InferenceRecord(
        request_id=request_id,
        model=IRIS,
        request=half(request, at),
        response=half(response, at),
        scores=(outlier_score(float(abs(row[1]) > 2.5) * 2),),
    )


def fill(store_url: str, drift_from: int | None) -> None:
    """Both revisions through 50 one-minute windows; the candidate's inputs shift from ``drift_from`` on."""
    rng = np.random.default_rng(7)
    records = []
    for window in range(WINDOWS):
        for pod in (BASELINE_POD, CANDIDATE_POD):
            rows = rng.normal(size=(PER_WINDOW, 4))
            if pod == CANDIDATE_POD and drift_from is not None and window >= drift_from:
                rows[:, [0, 2]] += 1.0
            for n, row in enumerate(rows):
                at = (
                    window * WINDOW_SECONDS
                    + n * WINDOW_SECONDS / PER_WINDOW
                    + (0.5 if pod == CANDIDATE_POD else 0)
                )
                records.append(inference(f"{pod[-5:]}-{window}-{n}", pod, row.round(4).tolist(), at))
    store = SqlStore(store_url)
    store.write(records, [], [])
    store.close()


def judge(store_url: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        [
            "canary",
            "--model",
            "iris",
            "--store",
            store_url,
            "--window-seconds",
            str(WINDOW_SECONDS),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    verdict: dict[str, object] = json.loads(result.stdout)
    return verdict


def test_revisions_are_read_from_kserve_pod_names_and_filter_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, None)
    store = SqlStore(url)
    revisions = list_revisions(store.engine, PayloadFilter(inferenceservice="iris"))
    assert [(r.revision, r.inferences) for r in revisions] == [
        ("iris-predictor-00001", WINDOWS * PER_WINDOW),
        ("iris-predictor-00002", WINDOWS * PER_WINDOW),
    ]
    page = list_payloads(store.engine, PayloadFilter(revision="iris-predictor-00002"), limit=5)
    assert {p.revision for p in page.items} == {"iris-predictor-00002"}
    store.close()
    listed = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["query", "revisions", "--store", url])
    assert (
        listed.exit_code == 0
        and "iris-predictor-00001" in listed.stdout
        and "iris-predictor-00002" in listed.stdout
    )


def test_identical_revisions_are_promoted_and_rarely_called_different(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, None)
    verdict = judge(url)
    assert (verdict["baseline"], verdict["candidate"]) == ("iris-predictor-00001", "iris-predictor-00002")
    windows = verdict["windows"]
    assert isinstance(windows, list) and len(windows) == WINDOWS
    false = [w for w in windows if w["call"] == "differs"]
    print(f"\nidentical revisions: {len(false)} of {WINDOWS} windows called different (level 0.05)")
    assert len(false) / WINDOWS <= 0.05
    assert verdict["verdict"] == "promote"


def test_a_drifting_candidate_is_flagged_at_once_and_rolled_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, drift_from=40)
    verdict = judge(url)
    calls = [w["call"] for w in verdict["windows"]]  # type: ignore[attr-defined]
    first = next(index for index in range(40, WINDOWS) if calls[index] == "differs")
    after, before = calls[40:].count("differs"), calls[:40].count("differs")
    print(
        f"\ncandidate drifts from window 40: flagged at {first}, {after} of 10 after, {before} of 40 before"
    )
    assert first <= 41  # within one window of the shift
    assert after >= 9 and before / 40 <= 0.05  # before it, no more false calls than the level
    assert verdict["verdict"] == "roll back" and "inputs" in str(verdict["reason"])


def test_the_api_gives_the_same_verdict(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from infersight.config import ApiConfig
    from infersight.sinks.api import create_query_app

    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, drift_from=40)
    store = SqlStore(url)
    client = TestClient(create_query_app(store.engine, ApiConfig()))
    params = {"inferenceservice": "iris", "window_seconds": WINDOW_SECONDS}
    answer = client.get("/v1/canary", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] == "roll back" and answer.json() == judge(url) | {"p_val": 0.05}
    refused = client.get("/v1/canary", params={**params, "candidate": "nope"})
    assert refused.status_code == 400 and "no inferences of revision 'nope'" in refused.json()["error"]
    store.close()


def test_canary_needs_two_revisions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    fill(url, None)
    result = CliRunner().invoke(cli, ["canary", "--model", "iris", "--store", url, "--baseline", "nope"])
    assert result.exit_code == 1 and "no inferences of revision 'nope'" in str(result.exception)


@pytest.fixture(autouse=True)
def _quiet_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
