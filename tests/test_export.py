"""Export round trips: what was logged comes back from Parquet, CSV and JSON Lines, one row per instance."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from infersight.cli.app import app as cli
from infersight.records import Score
from infersight.sinks.export import export
from infersight.sinks.store import SqlStore
from infersight.sinks.store.filters import PayloadFilter
from tests.store_data import (
    BASE_TIME,
    DIGITS,
    IRIS,
    feedback_event,
    outlier_score,
    record,
    v1_request,
    v1_response,
    v2_request,
    v2_response,
)

IRIS_ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [7.0, 3.2, 4.7, 1.4],
    [6.4, 3.2, 4.5, 1.5],
    [6.3, 3.3, 6.0, 2.5],
    [5.8, 2.7, 5.1, 1.9],
]
IRIS_CLASSES = [0, 0, 1, 1, 2, 2]


def per_instance_outliers(values: list[float]) -> Score:
    return Score("iforest", "outlier", tuple(values), tuple(v > 1.0 for v in values), 1.0)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """Six v1 inferences of one instance each (the 5th an outlier), one v2 batch of two, labels for most."""
    opened = SqlStore(store_url)
    records = [
        record(
            f"v1-{n}",
            v1_request([row]),
            v1_response([cls]),
            offset_s=n,
            scores=(outlier_score(2.0 if n == 4 else 0.3),),
        )
        for n, (row, cls) in enumerate(zip(IRIS_ROWS, IRIS_CLASSES, strict=True))
    ]
    batch = [IRIS_ROWS[0], IRIS_ROWS[4]]
    records.append(
        record(
            "v2-batch",
            v2_request(batch),
            v2_response([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
            model=DIGITS,
            offset_s=10,
            scores=(per_instance_outliers([0.2, 1.7]),),
        )
    )
    labels = [feedback_event(f"fb-{n}", f"v1-{n}", cls) for n, cls in enumerate(IRIS_CLASSES) if n != 5]
    labels.append(feedback_event("fb-v2", "v2-batch", [0, 1], model=None))
    opened.write(records, feedback=labels)
    yield opened
    opened.close()


def test_parquet_round_trip_gives_back_features_predictions_labels_and_flags(
    store: SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "iris.parquet"
    result = export(store.engine, PayloadFilter(inferenceservice="iris"), path, "parquet")
    assert (result.inferences, result.rows) == (6, 6)

    frame = pq.read_table(path).to_pandas()
    assert list(frame.columns[:11]) == [
        "request_id", "instance", "namespace", "inferenceservice", "component", "endpoint", "time",
        "input_0", "input_1", "input_2", "input_3",
    ]  # fmt: skip
    np.testing.assert_array_equal(frame[["input_0", "input_1", "input_2", "input_3"]].to_numpy(), IRIS_ROWS)
    assert frame["output_0"].tolist() == IRIS_CLASSES
    assert frame["prediction"].tolist() == IRIS_CLASSES
    assert frame["label"].tolist()[:5] == IRIS_CLASSES[:5] and pd.isna(frame["label"].iloc[5])
    assert frame["outlier"].tolist() == [False, False, False, False, True, False]
    assert frame["outlier_score"].tolist() == [0.3, 0.3, 0.3, 0.3, 2.0, 0.3]
    assert frame["time"].tolist() == [BASE_TIME + timedelta(seconds=n) for n in range(6)]
    assert frame["request_id"].tolist() == [f"v1-{n}" for n in range(6)]
    assert set(frame["namespace"]) == {IRIS.namespace} and set(frame["endpoint"]) == {"default"}
    assert set(frame["component"]) == {"predictor"}


def test_v2_tensors_become_named_columns_and_a_batch_one_row_per_instance(
    store: SqlStore, tmp_path: Path
) -> None:
    path = tmp_path / "digits.parquet"
    export(store.engine, PayloadFilter(namespace="vision"), path, "parquet")
    frame = pq.read_table(path).to_pandas()
    features = ["sepal_0", "sepal_1", "petal_length", "petal_width"]
    outputs = ["probabilities_0", "probabilities_1", "probabilities_2"]
    assert [c for c in frame.columns if c in features + outputs] == features + outputs
    # FP32 on the wire: the values are float32's, exactly.
    np.testing.assert_array_equal(
        frame[features].to_numpy().astype(np.float32),
        np.asarray([IRIS_ROWS[0], IRIS_ROWS[4]], dtype=np.float32),
    )
    np.testing.assert_array_equal(
        frame[outputs].to_numpy().astype(np.float32), np.float32([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    )
    assert frame["instance"].tolist() == [0, 1]
    assert frame["prediction"].tolist() == [0, 2] and frame["label"].tolist() == [0, 1]
    # Per-instance detector verdicts.
    assert frame["outlier"].tolist() == [False, True]
    assert frame["outlier_score"].tolist() == pytest.approx([0.2, 1.7])


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_csv_and_json_lines_hold_the_same_values(store: SqlStore, tmp_path: Path, file_format: str) -> None:
    path = tmp_path / f"iris.{file_format}"
    export(store.engine, PayloadFilter(inferenceservice="iris"), path, file_format)
    frame = pd.read_csv(path) if file_format == "csv" else pd.read_json(path, lines=True)
    np.testing.assert_array_equal(frame[["input_0", "input_1", "input_2", "input_3"]].to_numpy(), IRIS_ROWS)
    assert frame["prediction"].tolist() == IRIS_CLASSES
    assert frame["label"].tolist()[:5] == IRIS_CLASSES[:5]
    assert frame["outlier"].tolist() == [False, False, False, False, True, False]


def test_excluding_outliers_and_small_row_groups(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    result = export(
        store.engine, PayloadFilter(inferenceservice="iris", outlier=False), path, "parquet", batch_values=50
    )
    assert result.rows == 5
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_columns == 19
    assert parquet.metadata.num_row_groups == 3  # 2 rows of 19 columns per 50 values: 2 + 2 + 1
    frame = parquet.read().to_pandas()
    assert "v1-4" not in set(frame["request_id"])
    np.testing.assert_array_equal(
        frame["input_2"].to_numpy(), [r[2] for n, r in enumerate(IRIS_ROWS) if n != 4]
    )


def test_an_empty_selection_writes_a_file_with_the_columns(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    result = export(store.engine, PayloadFilter(namespace="absent"), path, "parquet")
    assert result.rows == 0 and pq.read_table(path).num_rows == 0


def test_cli_export_writes_parquet_with_a_summary(store: SqlStore, tmp_path: Path) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    path = tmp_path / "train.parquet"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["export", str(path), "--store", url, "--model", "iris", "--exclude-outliers", "--labelled"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 4 rows (4 inferences" in result.stderr
    assert pq.read_table(path).column("label").to_pylist() == [0, 0, 1, 1]
    other = tmp_path / "transformer.parquet"
    none = runner.invoke(cli, ["export", str(other), "--store", url, "--component", "transformer"])
    assert none.exit_code == 1 and "no stored inferences match these filters" in str(none.exception)
    assert not other.exists()
    # As a user sees it: one line on stderr and exit status 1, no traceback.
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "infersight",
            "export",
            str(tmp_path / "x.parquet"),
            "--store",
            f"sqlite:///{tmp_path}/no.db",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: no store at {tmp_path}/no.db (a worker creates it; or run `infersight db upgrade`)"
    ]


def test_detections_name_features_as_the_export_does() -> None:
    """One name per feature everywhere: a detector's features are the export's columns."""
    from infersight.config import DetectorConfig
    from infersight.detectors.features import instances
    from infersight.records import Payload
    from infersight.sinks.store.tensors import columns, instance_count, payload_json
    from tests.store_data import record, v1_request, v1_response, v2_request, v2_response

    def export_names(payload: Payload, side: str) -> list[str]:
        tensors = payload_json(payload)
        return [name for name, _ in columns(tensors, instance_count(tensors), side)]

    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]
    v1 = record("a", v1_request(rows), v1_response([0, 1]))
    v2 = record("b", v2_request(rows), v2_response([[0.9, 0.1], [0.2, 0.8]]))
    on_request = DetectorConfig(name="ks", kind="drift", algorithm="KSDrift", reference="x.npy")
    both = on_request.model_copy(update={"on": ["request", "response"]})
    assert v1.request is not None and v1.response is not None and v2.request is not None
    assert instances(v1, on_request).names == ("input_0", "input_1", "input_2", "input_3")
    assert list(instances(v1, on_request).names) == export_names(v1.request.payload, "input")
    assert list(instances(v1, both).names) == [
        *export_names(v1.request.payload, "input"),
        *export_names(v1.response.payload, "output"),
    ]
    # v2: the first tensor's own name, as the export's first columns.
    first = instances(v2, on_request).names
    assert first == ("sepal_0", "sepal_1") and list(first) == export_names(v2.request.payload, "input")[:2]
