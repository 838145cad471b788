"""Closing the loop: drifted traffic, a reference rebuilt from the store, the new version taken live."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from infersight.cli.app import app as cli
from infersight.config import load_settings
from infersight.detectors.loading import load_all, use_legacy_keras
from infersight.detectors.metrics import DetectorMetrics
from infersight.detectors.runner import DetectorRunner
from infersight.detectors.sources import publish_version
from infersight.records import InferenceRecord
from infersight.sinks.store import SqlStore
from infersight.sinks.store.filters import DetectionFilter
from infersight.sinks.store.query import list_detections
from tests.store_data import IRIS, record, v1_request, v1_response

WINDOW = 100


def traffic(rng: np.random.Generator, shift: float, start: int) -> list[InferenceRecord]:
    rows = rng.normal(size=(WINDOW, 4)) + shift
    return [
        record(
            f"r-{start + n}",
            v1_request([row.round(4).tolist()]),
            v1_response([0]),
            model=IRIS,
            offset_s=start + n,
        )
        for n, row in enumerate(rows)
    ]


def test_a_reference_rebuilt_from_drifted_traffic_ends_the_drift_without_a_restart(tmp_path: Path) -> None:
    use_legacy_keras()  # before alibi-detect's saving first imports TensorFlow in this process
    from alibi_detect.cd import KSDrift
    from alibi_detect.saving import save_detector

    rng = np.random.default_rng(3)
    versions = tmp_path / "detectors" / "ks"
    first = tmp_path / "v1"
    save_detector(KSDrift(rng.normal(size=(500, 4)).astype(np.float32), p_val=0.01), str(first))
    publish_version(first, str(versions), "v1", {})
    config = tmp_path / "infersight.yaml"
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    config.write_text(
        yaml.safe_dump(
            {
                "store": {"url": store_url},
                "detections": {"cache_dir": str(tmp_path / "cache")},
                "models": [
                    {
                        "namespace": IRIS.namespace,
                        "inferenceservice": IRIS.inferenceservice,
                        "detectors": [
                            {"name": "ks", "kind": "drift", "uri": str(versions), "window": {"size": WINDOW}},
                        ],
                    }
                ],
            }
        )
    )
    settings = load_settings(config)
    runner = DetectorRunner(
        load_all(settings.models, settings.detections.cache_dir), DetectorMetrics(CollectorRegistry(), 10)
    )

    # The inputs moved by two standard deviations: version v1 finds drift.
    drifted = traffic(rng, 2.0, 0)
    scored, detections = runner.process(drifted)
    assert [(d.detected, d.version) for d in detections] == [(True, "v1")]
    store = SqlStore(store_url)
    store.write(scored, detections, [])
    stored = list_detections(store.engine, DetectionFilter(kind="drift")).items
    assert [d.detector_version for d in stored] == ["v1"]

    # The shift is the new normal: rebuild the reference from the stored traffic. Left out by
    # default, as it lies in a window with drift; kept when asked for.
    runner_cli = CliRunner()
    arguments = [
        "--config",
        str(config),
        "reference",
        "--model",
        "iris",
        "--detector",
        "ks",
        "--algorithm",
        "KSDrift",
    ]
    refused = runner_cli.invoke(cli, [*arguments, "--version", "v2"])
    assert refused.exit_code == 1 and "nothing to build a reference from" in str(refused.exception)
    built = runner_cli.invoke(
        cli, [*arguments, "--version", "v2", "--include-flagged", "--parameters", '{"p_val": 0.01}']
    )
    assert built.exit_code == 0, built.output
    assert "fitted KSDrift on 100 instances of 4 features; version v2" in built.stderr
    assert (versions / "LATEST").read_text().strip() == "v2" and (versions / "v1").is_dir()

    # The running detectors take v2 without a restart; the same shifted traffic is no drift any more.
    taken = runner.refresh(settings.detections.cache_dir)
    assert [(loaded.config.name, loaded.version) for loaded in taken] == [("ks", "v2")]
    assert runner.refresh(settings.detections.cache_dir) == []  # nothing newer since
    _, after = runner.process(traffic(rng, 2.0, WINDOW))
    assert [(d.detected, d.version) for d in after] == [(False, "v2")]
    store.close()
