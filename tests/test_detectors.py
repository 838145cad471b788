"""Real alibi-detect detectors behind the runner: drift families, outliers, loading and its refusals.

Every detector is fitted here on data that ships with scikit-learn; nothing is downloaded.
Records go through the runner the way the worker hands them over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from infersight.config import ModelConfig
from infersight.detectors.loading import DetectorLoadError, load_all
from infersight.detectors.metrics import DetectorMetrics
from infersight.detectors.runner import DetectorRunner
from infersight.detectors.state import StateStore
from infersight.detectors.windows import Window, decode_window, encode_window
from infersight.records import Detection
from tests.detectors_data import NAMESPACE, breast_cancer, records

WINDOW = 100


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Detectors draw random numbers (permutation tests, classifier training, online windows):
    seeded, each test gives the same answer every run, whatever ran before it."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)


def make_runner(
    tmp_path: Path, detectors: list[dict[str, Any]], model: str = "m", states: StateStore | None = None
) -> DetectorRunner:
    config = ModelConfig(namespace=NAMESPACE, inferenceservice=model, detectors=detectors)
    loaded = load_all([config], tmp_path / "cache")
    return DetectorRunner(loaded, DetectorMetrics(CollectorRegistry(), 100), states)


def save_reference(tmp_path: Path, data: np.ndarray[Any, Any], suffix: str) -> str:
    path = tmp_path / f"reference{suffix}"
    if suffix == ".npy":
        np.save(path, data)
    elif suffix == ".csv":
        header = ",".join(f"f{index}" for index in range(data.shape[1]))
        np.savetxt(path, data, delimiter=",", header=header, comments="")
    else:
        pq.write_table(pa.table({f"f{index}": data[:, index] for index in range(data.shape[1])}), path)
    return f"file://{path}"


def drift_tests(runner: DetectorRunner, rows: np.ndarray[Any, Any]) -> list[Detection]:
    _, detections = runner.process(records("m", rows))
    return [detection for detection in detections if detection.kind == "drift"]


def categorical(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Five categories per feature, cut at fixed points of the standardised scale."""
    return np.digitize(x, [-1.0, -0.3, 0.3, 1.0]).astype(np.float32)


def binary(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return (x > 0).astype(np.float32)


def identity(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return x


DRIFT_CASES = [
    ("KSDrift", {"p_val": 0.01}, identity, ".parquet"),
    ("CVMDrift", {"p_val": 0.01}, identity, ".csv"),
    ("ChiSquareDrift", {"p_val": 0.01}, categorical, ".npy"),
    ("TabularDrift", {"p_val": 0.01, "categories_per_feature": {0: None, 1: None}}, categorical, ".npy"),
    ("FETDrift", {"p_val": 0.01, "alternative": "greater"}, binary, ".npy"),
    ("MMDDrift", {"p_val": 0.01, "n_permutations": 200}, identity, ".npy"),
    ("LSDDDrift", {"p_val": 0.01, "n_permutations": 200}, identity, ".npy"),
]


@pytest.mark.parametrize(
    ("algorithm", "parameters", "transform", "suffix"), DRIFT_CASES, ids=[c[0] for c in DRIFT_CASES]
)
def test_drift_family_no_drift_then_drift(
    tmp_path: Path, algorithm: str, parameters: dict[str, Any], transform: Any, suffix: str
) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, transform(reference), suffix)
    runner = make_runner(
        tmp_path,
        [
            {
                "name": "drift",
                "kind": "drift",
                "algorithm": algorithm,
                "reference": uri,
                "parameters": parameters,
                "window": {"size": WINDOW},
            }
        ],
    )
    clean = drift_tests(runner, transform(held_out[: 2 * WINDOW]))
    shifted = drift_tests(runner, transform(held_out[: 2 * WINDOW] + 1.0))
    assert [d.detected for d in clean] == [False, False], [(d.p_value, d.statistic) for d in clean]
    assert [d.detected for d in shifted] == [True, True], [(d.p_value, d.statistic) for d in shifted]
    for detection in clean + shifted:
        assert detection.instances == WINDOW
        assert len(detection.request_ids) == WINDOW
        assert detection.window_start <= detection.window_end
        assert detection.algorithm == algorithm
    assert shifted[0].p_value is not None and shifted[0].p_value < 0.01
    if algorithm in ("KSDrift", "CVMDrift", "ChiSquareDrift", "TabularDrift", "FETDrift"):
        assert len(shifted[0].feature_p_values) == reference.shape[1]
        assert shifted[0].features == tuple(
            f"input_{index}" for index in range(reference.shape[1])
        )  # as exports name them


def test_classifier_drift_saved_with_its_model_loads_from_a_file_uri(tmp_path: Path) -> None:
    import tf_keras as keras
    from alibi_detect.cd import ClassifierDrift
    from alibi_detect.saving import save_detector

    reference, held_out = breast_cancer()
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(30,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    detector = ClassifierDrift(reference, model, p_val=0.01, train_size=0.75, epochs=5, verbose=0)
    save_detector(detector, tmp_path / "saved")
    runner = make_runner(
        tmp_path,
        [
            {
                "name": "classifier",
                "kind": "drift",
                "uri": f"file://{tmp_path / 'saved'}",
                "window": {"size": WINDOW},
                "allow_unsafe_loading": True,  # the classifier's loss function is saved with dill
            }
        ],
    )
    clean = drift_tests(runner, held_out[:WINDOW])
    shifted = drift_tests(runner, held_out[WINDOW : 2 * WINDOW] * 2.0 + 1.0)
    assert [d.detected for d in clean] == [False]
    assert [d.detected for d in shifted] == [True]
    assert clean[0].algorithm == "ClassifierDrift"


def online_config(reference_uri: str) -> dict[str, Any]:
    return {
        "name": "online",
        "kind": "drift",
        "algorithm": "LSDDDriftOnline",
        "reference": reference_uri,
        "parameters": {"ert": 500, "window_size": 10, "n_bootstraps": 1000, "verbose": False},
        "window": {"size": 50},
    }


def test_online_drift_is_fed_one_instance_at_a_time_and_its_state_survives_a_restart(tmp_path: Path) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    states = StateStore(str(tmp_path / "state"))
    first = make_runner(tmp_path, [online_config(uri)], states=states)
    clean = drift_tests(first, held_out[:100])
    assert [d.detected for d in clean] == [False, False], [(d.statistic, d.threshold) for d in clean]
    assert first.save_states() == 1

    second = make_runner(tmp_path, [online_config(uri)], states=states)
    shifted = drift_tests(second, held_out[100:200] + 1.0)
    assert [d.detected for d in shifted] == [True, True]
    (slot,) = second._slots.values()
    # 100 instances before the restart, 100 after: the detector's clock carried on.
    assert slot.detector._detector.t == 200
    assert all(d.statistic is not None and d.threshold is not None for d in clean + shifted)


def test_outliers_flagged_on_far_away_points_in_one_call_per_batch(tmp_path: Path) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    runner = make_runner(
        tmp_path,
        [
            {
                "name": "iforest",
                "kind": "outlier",
                "algorithm": "IForest",
                "reference": uri,
                "parameters": {"threshold_perc": 99},
            },
            {"name": "mahalanobis", "kind": "outlier", "algorithm": "Mahalanobis", "reference": uri},
        ],
    )
    far = held_out[:10] + 8.0
    rows = np.concatenate([held_out[:200], far])
    scored, detections = runner.process(records("m", rows))
    for name in ("iforest", "mahalanobis"):
        flags = [any(s.flagged for s in r.scores if s.detector == name) for r in scored]
        assert all(flags[200:]), name
        assert sum(flags[:200]) <= 10, name  # about 1% expected at the 99th percentile
        flagged_ids = {d.request_ids[0] for d in detections if d.detector == name}
        assert flagged_ids == {r.request_id for r, flag in zip(scored, flags, strict=True) if flag}
    duration = runner.metrics.duration.metric.labels(
        NAMESPACE, "m", "", "default", "", "iforest"
    )  # no component
    assert duration._sum.get() > 0  # type: ignore[attr-defined]
    # one predict call per detector for the whole batch of 210 records
    assert sum(bucket.get() for bucket in duration._buckets) == 1  # type: ignore[attr-defined]


def test_a_detector_that_raises_stops_the_batch(tmp_path: Path) -> None:
    """Nothing is skipped: the exception reaches the worker, which commits nothing past it."""
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    runner = make_runner(
        tmp_path, [{"name": "iforest", "kind": "outlier", "algorithm": "IForest", "reference": uri}]
    )
    good = records("m", held_out[:5])
    narrow = records("m", held_out[:3, :4])  # four features, not thirty: scikit-learn refuses them
    with pytest.raises(ValueError, match="features"):
        runner.process([*good, *narrow])
    scored, _ = runner.process(good)  # the same detector goes on with what it can take
    assert all(r.scores for r in scored)


def test_endpoints_get_their_own_windows(tmp_path: Path) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    runner = make_runner(
        tmp_path,
        [{"name": "ks", "kind": "drift", "algorithm": "KSDrift", "reference": uri, "window": {"size": 50}}],
    )
    mixed = records("m", held_out[:50]) + records("m", held_out[50:100] + 1.0, endpoint="canary")
    _, detections = runner.process(mixed)
    by_endpoint = {d.model.endpoint: d.detected for d in detections}
    assert by_endpoint == {"default": False, "canary": True}


def test_time_windows_close_without_traffic(tmp_path: Path) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    now = [1000.0]
    config = ModelConfig(
        namespace=NAMESPACE,
        inferenceservice="m",
        detectors=[
            {
                "name": "ks",
                "kind": "drift",
                "algorithm": "KSDrift",
                "reference": uri,
                "window": {"seconds": 60},
            }
        ],
    )
    runner = DetectorRunner(
        load_all([config], tmp_path), DetectorMetrics(CollectorRegistry(), 100), clock=lambda: now[0]
    )
    assert runner.process(records("m", held_out[:40] + 1.0))[1] == []
    now[0] += 30
    assert runner.tick() == []
    now[0] += 31
    (detection,) = runner.tick()
    assert detection.detected and detection.instances == 40


def test_unsafe_saved_detectors_are_refused_unless_allowed(tmp_path: Path) -> None:
    from alibi_detect.od import IForest
    from alibi_detect.saving import save_detector

    reference, _ = breast_cancer()
    detector = IForest()
    detector.fit(reference)
    detector.infer_threshold(reference, threshold_perc=99)
    save_detector(detector, tmp_path / "iforest")
    entry = {"name": "iforest", "kind": "outlier", "uri": str(tmp_path / "iforest")}
    with pytest.raises(DetectorLoadError, match=r"model tests/m, detector 'iforest' .*allow_unsafe_loading"):
        make_runner(tmp_path, [entry])
    runner = make_runner(tmp_path, [{**entry, "allow_unsafe_loading": True}])
    assert runner.detectors_for(records("m", reference[:1])[0].model)[0].algorithm == "IForest"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"name": "x", "kind": "drift", "uri": "file:///nowhere/at/all"}, "is not a folder"),
        (
            {"name": "x", "kind": "drift", "algorithm": "KSDrift", "reference": "file:///nowhere.npy"},
            "cannot read",
        ),
        ({"name": "x", "kind": "drift", "algorithm": "OutlierVAE", "reference": "REF"}, "cannot be fitted"),
        (
            {"name": "x", "kind": "outlier", "algorithm": "KSDrift", "reference": "REF"},
            "not a outlier detector",
        ),
        (
            {
                "name": "x",
                "kind": "drift",
                "algorithm": "KSDrift",
                "reference": "REF",
                "parameters": {"p_value": 1},
            },
            "p_value",
        ),
    ],
)
def test_a_detector_that_cannot_load_names_the_model_the_source_and_why(
    tmp_path: Path, entry: dict[str, Any], reason: str
) -> None:
    reference, _ = breast_cancer()
    if entry.get("reference") == "REF":
        entry = {**entry, "reference": save_reference(tmp_path, reference, ".npy")}
    with pytest.raises(DetectorLoadError, match=reason) as error:
        make_runner(tmp_path, [entry])
    assert "model tests/m, detector 'x'" in str(error.value)


@pytest.fixture(scope="module")
def s3_server() -> Any:
    """An S3-compatible server (moto's server mode) on loopback."""
    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_a_saved_detector_loads_from_s3_and_is_fetched_once(
    tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from alibi_detect.cd import KSDrift
    from alibi_detect.saving import save_detector

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reference, held_out = breast_cancer()
    save_detector(KSDrift(reference, p_val=0.01), tmp_path / "ks")
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="detectors")
    for path in (tmp_path / "ks").rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "detectors", f"cancer/ks/{path.relative_to(tmp_path / 'ks')}")
    entry = {
        "name": "ks",
        "kind": "drift",
        "uri": "s3://detectors/cancer/ks",
        "storage_options": {"endpoint_url": s3_server},
        "window": {"size": WINDOW},
    }
    runner = make_runner(tmp_path, [entry])
    assert [d.detected for d in drift_tests(runner, held_out[:WINDOW] + 1.0)] == [True]
    # Cached: a second load works with the server's copy gone.
    s3.delete_object(Bucket="detectors", Key="cancer/ks/config.toml")
    again = make_runner(tmp_path, [entry])
    assert [d.detected for d in drift_tests(again, held_out[:WINDOW])] == [False]
    with pytest.raises(DetectorLoadError, match=r"cannot fetch|no files"):
        make_runner(tmp_path, [{**entry, "uri": "s3://detectors/elsewhere"}])


class KeptWindows(dict[tuple[Any, str], bytes]):
    """A window keeper over a dict, as the worker's keeper is over the engine's state."""

    def load(self, model: Any, detector: str) -> Window | None:
        blob = self.get((model, detector))
        return decode_window(blob) if blob is not None else None

    def save(self, model: Any, detector: str, window: Window | None) -> None:
        if window is None:
            self.pop((model, detector), None)
        else:
            self[(model, detector)] = encode_window(window)


def test_an_open_window_moves_to_the_next_runner_and_every_instance_is_tested_once(tmp_path: Path) -> None:
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")
    detectors = [
        {"name": "ks", "kind": "drift", "algorithm": "KSDrift", "reference": uri, "window": {"size": 50}}
    ]
    kept = KeptWindows()
    stream = records("m", held_out[:70])
    first = make_runner(tmp_path, detectors)
    first.windows = kept
    _, found = first.process(stream[:30])
    assert found == [] and len(kept) == 1
    # The worker goes; another takes the model on with what was kept at the last commit.
    second = make_runner(tmp_path, detectors)
    second.windows = kept
    _, found = second.process(stream[30:])
    (window,) = [d for d in found if d.kind == "drift"]
    assert window.instances == 50
    assert len(window.request_ids) == 50 and len(set(window.request_ids)) == 50
    # The next window holds the 20 instances after it, and nothing before.
    (_, name), blob = next(iter(kept.items()))
    assert name == "ks" and decode_window(blob).count == 20
    # Undisturbed, one runner gives the same window over the same instances.
    alone = make_runner(tmp_path, detectors)
    _, same = alone.process(stream)
    assert [d.id for d in same if d.kind == "drift"] == [window.id]


def test_a_window_survives_encoding_as_it_was() -> None:
    window = Window(opened_at=5.0, names=("a", "b"))
    window.add(np.arange(6, dtype=np.float32).reshape(3, 2), "r1", 10.0)
    window.add(np.ones((1, 2), dtype=np.float32), "r2", 12.0)
    again = decode_window(encode_window(window))
    assert (again.opened_at, again.names, again.count, again.request_ids) == (
        5.0,
        ("a", "b"),
        4,
        ["r1", "r2"],
    )
    assert (again.first_time, again.last_time) == (10.0, 12.0)
    np.testing.assert_array_equal(again.rows(), window.rows())
    empty = decode_window(encode_window(Window(opened_at=1.0, names=())))
    assert empty.count == 0 and empty.chunks == [] and empty.first_time == float("inf")


def ks_window(name: str, reference: str) -> dict[str, Any]:
    """A KSDrift fitted on ``reference``, testing windows of 50."""
    return {
        "name": name,
        "kind": "drift",
        "algorithm": "KSDrift",
        "reference": reference,
        "window": {"size": 50},
    }


def test_a_detector_configured_for_a_component_sees_that_component_alone(tmp_path: Path) -> None:
    """The transformer's entry replaces the service-wide one for the transformer; the others keep it.

    Components a detector shares get their own windows, as endpoints do.
    """
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")

    service = ModelConfig(namespace=NAMESPACE, inferenceservice="m", detectors=[ks_window("ks-all", uri)])
    transformer = ModelConfig(
        namespace=NAMESPACE,
        inferenceservice="m",
        component="transformer",
        detectors=[ks_window("ks-transformer", uri)],
    )
    runner = DetectorRunner(
        load_all([service, transformer], tmp_path / "cache"), DetectorMetrics(CollectorRegistry(), 100)
    )
    predictor = records("m", held_out[:50], component="predictor")
    explainer = records("m", held_out[50:100] + 1.0, component="explainer")
    transformed = records("m", held_out[:50] + 1.0, component="transformer")
    assert [d.config.name for d in runner.detectors_for(transformed[0].model)] == ["ks-transformer"]
    assert [d.config.name for d in runner.detectors_for(predictor[0].model)] == ["ks-all"]

    _, detections = runner.process([*predictor, *explainer, *transformed])
    found = {(d.detector, d.model.component): d.detected for d in detections}
    assert found == {
        ("ks-all", "predictor"): False,
        ("ks-all", "explainer"): True,
        ("ks-transformer", "transformer"): True,
    }
    assert len({d.id for d in detections}) == 3


def test_an_entry_naming_a_revision_watches_that_revision_alone(tmp_path: Path) -> None:
    """A rollout's revision gets its own detector and windows; the others keep the model's."""
    reference, held_out = breast_cancer()
    uri = save_reference(tmp_path, reference, ".npy")

    old, new = "m-predictor-00001", "m-predictor-00002"
    service = ModelConfig(namespace=NAMESPACE, inferenceservice="m", detectors=[ks_window("ks", uri)])
    rollout = ModelConfig(
        namespace=NAMESPACE, inferenceservice="m", revision=new, detectors=[ks_window("ks", uri)]
    )
    registry = CollectorRegistry()
    runner = DetectorRunner(load_all([service, rollout], tmp_path / "cache"), DetectorMetrics(registry, 100))
    served_by_old = records("m", held_out[:50], source=f"{old}-deployment-7c9f8b6d5-x2x4p")
    served_by_new = records("m", held_out[:50] + 1.0, source=f"{new}-deployment-6d5c4b3a2-q9w8e")
    assert served_by_new[0].revision == new
    assert runner.detectors_for(served_by_new[0].model, new)[0].model.revision == new
    assert runner.detectors_for(served_by_old[0].model, old)[0].model.revision is None

    # Interleaved, the two revisions' instances still fill separate windows of 50.
    mixed = [record for pair in zip(served_by_old, served_by_new, strict=True) for record in pair]
    _, detections = runner.process(mixed)
    found = {d.revision: (d.detected, d.instances) for d in detections}
    assert found == {"": (False, 50), new: (True, 50)}
    assert set(detections[0].request_ids).isdisjoint(detections[1].request_ids)
    labels = {"namespace": NAMESPACE, "inferenceservice": "m", "component": "", "endpoint": "default"}
    drift = registry.get_sample_value(
        "infersight_drift_detected", {**labels, "revision": new, "detector": "ks"}
    )
    assert drift == 1.0


def test_an_entry_naming_a_revision_cannot_sample_or_redact() -> None:
    with pytest.raises(ValueError, match="naming a revision takes detectors only"):
        ModelConfig(namespace=NAMESPACE, inferenceservice="m", revision="m-predictor-00002", sample_rate=0.5)
