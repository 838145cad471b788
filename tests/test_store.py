"""The SQL store on SQLite and on a real PostgreSQL: one row per inference, merges, feedback, metrics."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from prometheus_client import CollectorRegistry
from sqlalchemy import select, text

from infersight.records import Detection, ModelRef
from infersight.sinks.store import SqlStore, StoreError, StoreMetrics, make_engine, upgrade
from infersight.sinks.store.models import Base, DetectionRow, Inference
from tests.store_data import (
    BASE_TIME,
    IRIS,
    IRIS_CANARY,
    IRIS_TRANSFORMER,
    adversarial_score,
    feedback_event,
    outlier_score,
    record,
    seldon_feedback_event,
    v1_request,
    v1_response,
    v2_request,
    v2_response,
)

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(store_url)
    yield opened
    opened.close()


def rows(store: SqlStore, table: str) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1")).mappings()]


def inference(store: SqlStore, request_id: str) -> Inference:
    from sqlalchemy.orm import Session

    with Session(store.engine) as session:
        return session.execute(select(Inference).where(Inference.request_id == request_id)).scalar_one()


def test_migrations_create_exactly_the_tables_of_the_models(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_rows_stored_before_components_take_theirs_from_their_attributes(store_url: str) -> None:
    """Upgrading from revision 0001: component and occurrence come from the stored attributes."""
    from datetime import UTC, datetime

    from sqlalchemy import Table, column, table

    from infersight.sinks.store.rows import inference_row
    from infersight.sinks.store.writer import ACCURACY, INFERENCES

    def before(new: Table) -> Any:
        """The table as revision 0001 has it: without component, occurrence and revision."""
        kept = [c for c in new.columns if c.name not in ("component", "occurrence", "revision")]
        return table(new.name, *(column(c.name, c.type) for c in kept))

    engine = make_engine(store_url)
    upgrade(engine, "0001")
    old = record("before", v1_request([SETOSA]), v1_response([0]))
    row = inference_row(old, None, datetime.now(UTC))
    del row["component"], row["occurrence"], row["revision"]
    with engine.begin() as connection:
        labelled = {"label": 0, "label_kind": "int", "correct": True}
        connection.execute(before(INFERENCES).insert(), [row | labelled])
        accuracy = {"namespace": "models", "inferenceservice": "iris", "endpoint": "default"}
        connection.execute(before(ACCURACY).insert(), [accuracy | {"labelled": 1, "correct": 1}])
    upgrade(engine)
    engine.dispose()

    store = SqlStore(store_url, migrate=False)
    [stored] = rows(store, "inferences")
    assert (stored["component"], stored["occurrence"]) == ("predictor", "2025-03-01T12:00:00.000000Z")
    [counts] = rows(store, "model_accuracy")
    assert counts == accuracy | {"component": "predictor", "labelled": 1, "correct": 1}
    store.write([old])  # redelivered after the upgrade: still one row
    store.write([record("before", v1_request([VIRGINICA]), v1_response([2]), offset_s=5)])  # the id reused
    assert len(rows(store, "inferences")) == 2
    store.close()


def test_a_store_opened_without_migrating_refuses_an_empty_database(store_url: str) -> None:
    with pytest.raises(StoreError, match="infersight db upgrade"):
        SqlStore(store_url, migrate=False)
    SqlStore(store_url).close()  # migrates
    SqlStore(store_url, migrate=False).close()


def test_a_batch_written_twice_leaves_one_row_per_inference_unchanged(store: SqlStore) -> None:
    batch = [
        record(
            f"req-{n}", v1_request([SETOSA]), v1_response([0]), offset_s=n, scores=(outlier_score(0.2 * n),)
        )
        for n in range(10)
    ]
    detection = Detection(
        id="drift-1",
        detector="ks",
        kind="drift",
        model=IRIS,
        detected=True,
        statistic=0.61,
        p_value=0.001,
        threshold=0.05,
        window_start=BASE_TIME.timestamp(),
        window_end=BASE_TIME.timestamp() + 9,
        request_ids=tuple(f"req-{n}" for n in range(10)),
        instances=10,
        features=("sepal_length", "petal_length"),
        feature_statistics=(0.2, 0.61),
        feature_p_values=(0.4, 0.001),
    )
    first = store.write(batch, [detection], [feedback_event("fb-1", "req-3", 0)])
    snapshot = {
        table: rows(store, table) for table in ("inferences", "detections", "feedback", "model_accuracy")
    }
    again = store.write(batch, [detection], [feedback_event("fb-1", "req-3", 0)])

    assert (first.inferences, first.detections, first.feedback, first.labelled) == (10, 1, 1, 1)
    assert (again.detections, again.feedback, again.labelled) == (0, 0, 0)
    assert {table: rows(store, table) for table in snapshot} == snapshot
    assert sorted(row["request_id"] for row in snapshot["inferences"]) == sorted(r.request_id for r in batch)


def test_a_response_stored_first_is_completed_by_its_request(store: SqlStore) -> None:
    response_only = record("r1", None, v2_response([[0.1, 0.2, 0.7]]), scores=(adversarial_score(0.9),))
    request_only = record("r1", v2_request([VIRGINICA]), None, scores=(outlier_score(3.0),))
    store.write([response_only])
    assert inference(store, "r1").request_time is None
    store.write([request_only])

    row = inference(store, "r1")
    assert len(rows(store, "inferences")) == 1
    assert row.request_time == BASE_TIME and row.time == BASE_TIME
    assert row.response_time == BASE_TIME + timedelta(milliseconds=20)
    assert row.protocol == row.request_protocol == row.response_protocol == "oip-v2"
    assert row.request_attributes is not None and row.request_attributes["type"].endswith(".request")
    assert row.request_body is not None and b'"sepal"' in row.request_body
    assert [t["name"] for t in row.inputs or []] == ["sepal", "petal_length", "petal_width"]
    assert row.inputs is not None and row.inputs[0]["data"] == [[6.7, 3.0]]
    assert row.prediction == [2]  # argmax of the probabilities
    assert row.meta == {"User-Agent": ["curl/8.5.0"]}
    # Each half's detector verdict is kept.
    assert (row.outlier, row.outlier_score) == (True, 3.0)
    assert (row.adversarial, row.adversarial_score) == (True, 0.9)
    assert set(row.scores or {}) == {"iforest", "ae"}


def test_halves_of_one_inference_in_one_batch_become_one_row(store: SqlStore) -> None:
    counts = store.write([record("r2", v1_request([SETOSA]), None), record("r2", None, v1_response([0]))])
    assert counts.inferences == 1
    row = inference(store, "r2")
    assert row.inputs is not None and row.outputs is not None and row.prediction == [0]


def inferences(store: SqlStore, request_id: str) -> list[Inference]:
    """Every row of ``request_id``, oldest first, JSON columns parsed."""
    from sqlalchemy.orm import Session

    with Session(store.engine) as session:
        query = select(Inference).where(Inference.request_id == request_id).order_by(Inference.time)
        return list(session.execute(query).scalars())


def identities(store: SqlStore, request_id: str) -> list[tuple[str, str, bool, bool]]:
    """``(component, occurrence, has request, has response)`` of each row of ``request_id``."""
    return sorted(
        (
            row["component"],
            row["occurrence"],
            row["request_time"] is not None,
            row["response_time"] is not None,
        )
        for row in rows(store, "inferences")
        if row["request_id"] == request_id
    )


def test_a_transformer_and_its_predictor_under_one_request_id_are_two_rows(store: SqlStore) -> None:
    """KServe logs the transformer and the predictor of one inference with the same ce-id."""
    transformer = record("shared", v1_request([SETOSA]), v1_response([[5.1, 3.5]]), model=IRIS_TRANSFORMER)
    predictor = record("shared", v1_request([[5.1, 3.5]]), v1_response([0]), model=IRIS)
    counts = store.write([transformer, predictor])
    assert counts.inferences == 2
    assert [identity[0] for identity in identities(store, "shared")] == ["predictor", "transformer"]
    store.write([predictor, transformer])  # redelivered
    assert len(rows(store, "inferences")) == 2

    # Feedback that names no component labels every component's row of the request id ...
    labelled = store.write(feedback=[feedback_event("fb-shared", "shared", 0)])
    assert labelled.labelled == 2
    assert {row["component"]: row["label"] for row in rows(store, "inferences")} == {
        "predictor": 0,
        "transformer": 0,
    }
    assert set(labelled.accuracy) == {IRIS, IRIS_TRANSFORMER}
    # ... and feedback that names one, that component's alone.
    later = BASE_TIME + timedelta(minutes=1)
    store.write(feedback=[feedback_event("fb-pred", "shared", 2, at=later, component="predictor")])
    assert {row["component"]: row["label"] for row in rows(store, "inferences")} == {
        "predictor": 2,
        "transformer": 0,
    }
    assert store.accuracy()[IRIS].ratio == 0.0 and set(store.accuracy()) == {IRIS, IRIS_TRANSFORMER}


def test_a_record_written_twice_is_one_row(store: SqlStore) -> None:
    once = record("twice", v1_request([SETOSA]), v1_response([0]), scores=(outlier_score(0.4),))
    assert store.write([once]).inferences == 1
    before = rows(store, "inferences")
    store.write([once])
    store.write([once, once])
    assert rows(store, "inferences") == before
    [row] = before
    assert (row["component"], row["occurrence"]) == ("predictor", "2025-03-01T12:00:00.000000Z")


def test_a_reused_request_id_gives_a_row_per_inference(store: SqlStore) -> None:
    """A client sending the same ce-id with each request: each inference is its own row."""
    first = record("reused", v1_request([SETOSA]), v1_response([0]))
    second = record("reused", v1_request([VIRGINICA]), v1_response([2]), offset_s=30)
    assert store.write([first, second]).inferences == 2
    assert identities(store, "reused") == [
        ("predictor", "2025-03-01T12:00:00.000000Z", True, True),
        ("predictor", "2025-03-01T12:00:30.000000Z", True, True),
    ]
    # Redelivered, paired again or as halves alone (pairing may go either way after a restart).
    store.write([second, first])
    store.write(
        [record("reused", v1_request([SETOSA]), None), record("reused", None, v1_response([2]), offset_s=30)]
    )
    assert len(identities(store, "reused")) == 2
    assert [row.prediction for row in inferences(store, "reused")] == [[0], [2]]


def test_halves_alone_under_a_reused_request_id_complete_their_own_inference(store: SqlStore) -> None:
    store.write([record("again", v1_request([SETOSA]), v1_response([0]))])  # the first inference, paired
    # The second one's halves each waited out the pairing timeout, and come in separate batches.
    store.write([record("again", v1_request([VIRGINICA]), None, offset_s=60)])
    store.write([record("again", None, v1_response([2]), offset_s=60)])
    assert identities(store, "again") == [
        ("predictor", "2025-03-01T12:00:00.000000Z", True, True),
        ("predictor", "2025-03-01T12:01:00.000000Z", True, True),
    ]
    second = inferences(store, "again")[1]
    assert second.prediction == [2] and second.inputs is not None and second.inputs[0]["data"] == [VIRGINICA]
    # A third inference's response alone, its request lost: a row of its own, not a completion.
    store.write([record("again", None, v1_response([1]), offset_s=120)])
    assert identities(store, "again")[-1] == ("predictor", "2025-03-01T12:02:00.020000Z", False, True)


def test_payloads_filter_by_component(store: SqlStore) -> None:
    from infersight.sinks.store.filters import PayloadFilter
    from infersight.sinks.store.query import count_payloads, list_models, list_payloads

    store.write(
        [
            record("c1", v1_request([SETOSA]), v1_response([[5.1]]), model=IRIS_TRANSFORMER),
            record("c1", v1_request([[5.1]]), v1_response([0])),
            record("c2", v1_request([SETOSA]), v1_response([0]), offset_s=1),
        ]
    )
    transformer = list_payloads(store.engine, PayloadFilter(component="transformer")).items
    assert [(p.request_id, p.component) for p in transformer] == [("c1", "transformer")]
    predictor = list_payloads(store.engine, PayloadFilter(inferenceservice="iris", component="predictor"))
    assert [p.request_id for p in predictor.items] == ["c2", "c1"]
    assert count_payloads(store.engine, PayloadFilter(component="")) == 0
    models = {(m.inferenceservice, m.component): m.inferences for m in list_models(store.engine)}
    assert models == {("iris", "predictor"): 2, ("iris", "transformer"): 1}


def test_detections_keep_their_window_and_per_feature_values(store: SqlStore) -> None:
    detection = Detection(
        id="d-7",
        detector="mmd",
        kind="drift",
        model=IRIS_CANARY,
        detected=False,
        statistic=0.01,
        p_value=0.8,
        threshold=0.05,
        window_start=BASE_TIME.timestamp(),
        window_end=BASE_TIME.timestamp() + 60,
        request_ids=("a", "b"),
        instances=2,
        features=("f0", "f1"),
        feature_statistics=(0.1, float("nan")),
        feature_p_values=(0.9, 0.7),
        time=BASE_TIME.timestamp() + 61,
        algorithm="MMDDrift",
    )
    assert store.write(detections=[detection, detection]).detections == 1
    from sqlalchemy.orm import Session

    with Session(store.engine) as session:
        row = session.get_one(DetectionRow, "d-7")
    assert (row.namespace, row.inferenceservice, row.endpoint) == ("models", "iris", "canary")
    assert (row.window_start, row.window_end) == (BASE_TIME, BASE_TIME + timedelta(seconds=60))
    assert row.time == BASE_TIME + timedelta(seconds=61)
    assert row.feature_statistics == [0.1, None] and row.feature_p_values == [0.9, 0.7]
    assert (row.algorithm, row.statistic, row.p_value, row.detected) == ("MMDDrift", 0.01, 0.8, False)


def test_feedback_before_the_inference_applies_when_it_arrives(store: SqlStore) -> None:
    early = store.write(feedback=[feedback_event("fb-early", "late-req", 2)])
    assert (early.feedback, early.labelled) == (1, 0)
    assert early.feedback_by_model == {ModelRef("models", "iris", ""): 1}

    counts = store.write([record("late-req", v1_request([VIRGINICA]), v1_response([2]))])
    row = inference(store, "late-req")
    assert (row.label, row.label_time, row.correct) == (2, BASE_TIME, True)
    assert counts.labelled == 1
    assert counts.accuracy == {IRIS: counts.accuracy[IRIS]} and counts.accuracy[IRIS].ratio == 1.0


def test_feedback_after_the_inference_sets_the_label_and_the_accuracy(store: SqlStore) -> None:
    store.write(
        [
            record("p1", v1_request([SETOSA]), v1_response([0])),
            record("p2", v1_request([VIRGINICA]), v1_response([1]), offset_s=1),
            record("p3", v2_request([SETOSA, VIRGINICA]), v2_response([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])),
            record("p4", v1_request([SETOSA]), None),  # no response yet: nothing to compare
        ]
    )
    counts = store.write(
        feedback=[
            feedback_event("f1", "p1", 0),
            feedback_event("f2", "p2", [2]),
            feedback_event("f3", "p3", [[0], [2]]),
            feedback_event("f4", "p4", "setosa", model=None),  # names no model: matched by request id
        ]
    )
    assert counts.labelled == 4
    assert [inference(store, r).correct for r in ("p1", "p2", "p3", "p4")] == [True, False, True, None]
    assert inference(store, "p4").label == "setosa"
    assert counts.accuracy[IRIS].labelled == 3 and math.isclose(counts.accuracy[IRIS].ratio, 2 / 3)

    # A later label replaces the earlier one, and the counts follow.
    fixed = store.write(feedback=[feedback_event("f5", "p2", 1, at=BASE_TIME + timedelta(minutes=5))])
    assert inference(store, "p2").label == 1 and inference(store, "p2").correct is True
    assert (fixed.accuracy[IRIS].labelled, fixed.accuracy[IRIS].correct) == (3, 3)
    assert store.accuracy()[IRIS].ratio == 1.0


def test_seldon_feedback_names_the_prediction_by_its_puid(store: SqlStore) -> None:
    store.write([record("puid-42", v1_request([SETOSA]), v1_response([0]))])
    counts = store.write(feedback=[seldon_feedback_event("seldon-fb-1", "puid-42", [[0]])])
    row = inference(store, "puid-42")
    assert (row.label, row.correct) == ([[0]], True)
    assert counts.feedback == 1
    [stored] = rows(store, "feedback")
    assert stored["reward"] == 1.0 and stored["type"] == "io.seldon.serving.feedback"


def test_feedback_without_request_or_label_is_skipped_and_counted(store: SqlStore) -> None:
    broken = feedback_event("bad", "", 1)
    counts = store.write(feedback=[broken, feedback_event("good", "x", 1)])
    assert (counts.feedback, counts.feedback_invalid) == (1, 1)


def test_store_metrics_count_rows_feedback_and_accuracy(store: SqlStore) -> None:
    registry = CollectorRegistry()
    metrics = StoreMetrics(registry)
    store.write([record("m1", v1_request([SETOSA]), v1_response([0]))])
    metrics.observe(store.write([record("m2", v1_request([SETOSA]), v1_response([1]))]), seconds=0.01)
    metrics.observe(store.write(feedback=[feedback_event("mf1", "m1", 0), feedback_event("mf2", "m2", 0)]))
    model = {
        "namespace": "models",
        "inferenceservice": "iris",
        "component": "predictor",
        "endpoint": "default",
    }

    assert registry.get_sample_value("infersight_store_rows_total", {"table": "inferences"}) == 1
    assert registry.get_sample_value("infersight_store_rows_total", {"table": "feedback"}) == 2
    # The feedback names the service alone: no component, no endpoint.
    assert (
        registry.get_sample_value("infersight_feedback_total", {**model, "component": "", "endpoint": ""})
        == 2
    )
    assert registry.get_sample_value("infersight_model_accuracy", model) == 0.5
    assert registry.get_sample_value("infersight_model_labelled_inferences", model) == 2
    assert registry.get_sample_value("infersight_store_write_duration_seconds_count") == 1


def test_postgresql_urls_use_psycopg(store_url: str) -> None:
    engine = make_engine(store_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.dialect.name in ("sqlite", "postgresql")
    if engine.dialect.name == "postgresql":
        assert engine.dialect.driver == "psycopg"


def test_db_upgrade_command_prepares_a_new_store(store_url: str) -> None:
    from typer.testing import CliRunner

    from infersight.cli.app import app as cli

    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade", "--store", store_url])
    assert first.exit_code == 0, first.output
    assert "empty → 0003" in first.stderr
    again = runner.invoke(cli, ["db", "upgrade", "--store", store_url])
    assert "up to date (revision 0003)" in again.stderr
    SqlStore(store_url, migrate=False).close()


def test_processes_opening_a_new_store_together_migrate_it_once(store_url: str) -> None:
    """Workers started side by side each migrate on start: one creates the schema, the rest wait."""
    import subprocess
    import sys

    script = "import sys; from infersight.sinks.store import SqlStore; SqlStore(sys.argv[1]).close()"
    starts = [
        subprocess.Popen([sys.executable, "-c", script, store_url], stderr=subprocess.PIPE) for _ in range(4)
    ]
    for process in starts:
        _, error = process.communicate(timeout=120)
        assert process.returncode == 0, error.decode()
    SqlStore(store_url, migrate=False).close()


def test_text_postgresql_cannot_hold_is_stored_without_stopping_the_writer(store: SqlStore) -> None:
    """A NUL character inside JSON strings: JSONB refuses it, so it is stored as U+FFFD instead.

    Left to the database, one such event would fail its batch forever and hold the stream.
    """
    hostile = {"instances": [{"name": "a\x00b", "note": "\\u0000 stays as typed"}]}
    store.write([record("nul", hostile, v1_response([0]))], [], [])
    row = inference(store, "nul")
    values = {value for tensor in row.inputs or [] for value in tensor["data"]}
    assert {"a\ufffdb", "\\u0000 stays as typed"} <= values
    assert row.request_body is not None and b"\\u0000" in row.request_body  # the body as sent


def test_rows_reach_the_driver_as_sqlalchemy_would_store_them(store: SqlStore) -> None:
    """The writer hands its rows to the driver itself: what it stores is what SQLAlchemy's types would."""
    from dataclasses import replace

    from sqlalchemy.orm import Session

    from infersight.records import RawEvent
    from infersight.sinks.store.rows import inference_row, scores_json
    from infersight.sinks.store.writer import INFERENCES
    from tests.store_data import half

    untimed = record("untimed", v1_request([SETOSA]), v1_response([1]), offset_s=7)
    bad_time = record("bad-time", v1_request([SETOSA]), None, offset_s=8)
    wide = record("wide", v1_request([SETOSA]), v1_response([1.0]), offset_s=4)
    assert untimed.request is not None and untimed.response is not None and bad_time.request is not None
    assert wide.request is not None
    # A number past 64 bits beside a string: an object array.
    body = b'{"instances": [[1180591620717411303424, "x"]]}'
    wide = replace(wide, request=half(RawEvent(dict(wide.request.event.attributes), body), BASE_TIME))
    del untimed.request.event.attributes["time"], untimed.response.event.attributes["time"]
    bad_time.request.event.attributes["time"] = "not a time"
    batch = [
        record("v1", v1_request([SETOSA, VIRGINICA]), v1_response([0, 2]), scores=(outlier_score(2.5),)),
        record(
            "v2", v2_request([VIRGINICA]), v2_response([[0.1, 0.2, 0.7]]), scores=(adversarial_score(0.1),)
        ),
        record("request-only", v2_request([SETOSA]), None, offset_s=1),
        record("response-only", None, v1_response([1]), offset_s=2),
        record("strings", {"instances": [{"name": "a\x00b", "note": "\\u0000"}]}, v1_response(["setosa"])),
        record("raw", {"anything": [1, 2]}, {"other": True}, offset_s=3),
        wide,
        record("regression", v1_request([SETOSA]), v1_response([0.25]), offset_s=5.000001),
        record("flags", v1_request([SETOSA, VIRGINICA]), {"predictions": [True, False]}, offset_s=6),
        untimed,
        bad_time,
    ]
    store.write(batch)
    with Session(store.engine) as session:
        [now] = set(session.execute(select(Inference.stored_at)).scalars())
    written = rows(store, "inferences")
    assert len(written) == len(batch)

    with store.engine.begin() as connection:
        connection.execute(INFERENCES.delete())
        references = [inference_row(r, scores_json(r.scores) if r.scores else None, now) for r in batch]
        connection.execute(INFERENCES.insert(), references)
    expected = rows(store, "inferences")

    def by_identity(found: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(row["request_id"], row["occurrence"]): {**row, "id": None} for row in found}

    assert by_identity(written) == by_identity(expected)


def test_json_integers_past_64_bits_are_written_as_the_floats_readers_make_of_them() -> None:
    """orjson refuses them; a hostile body's integer must not fail its batch on every retry."""
    import orjson

    from infersight.sinks.store.types import json_text

    text = json_text({"wide": [2**70, -(2**70), 2**64 - 1, -(2**63), 10**400, True], "nul": "a\x00b"})
    assert orjson.loads(text) == {
        "wide": [2.0**70, -(2.0**70), 2**64 - 1, -(2**63), None, True],
        "nul": "a\ufffdb",
    }


def test_a_row_stored_meanwhile_by_another_writer_is_merged_not_refused(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of request ids found nowhere go in by a plain INSERT; one stored in between is merged."""
    first = record("raced", v1_request([SETOSA]), None, scores=(outlier_score(2.0),))
    store.write([first])
    before = rows(store, "inferences")
    real = store._present

    def stale(connection: Any, table: Any, request_ids: Any) -> set[str]:
        # What a lookup made before the other writer committed would have said.
        return set() if table.name == "inferences" else real(connection, table, request_ids)

    attempts: list[bool] = []
    write_once = store._write

    def counted(*args: Any, plain_inserts: bool) -> Any:
        attempts.append(plain_inserts)
        return write_once(*args, plain_inserts=plain_inserts)

    monkeypatch.setattr(store, "_present", stale)
    monkeypatch.setattr(store, "_write", counted)
    counts = store.write([first, record("fresh", v1_request([VIRGINICA]), v1_response([2]), offset_s=1)])
    monkeypatch.undo()
    assert attempts == [True, False]  # the plain INSERT met the stored row: written again, merging
    assert counts.inferences == 2
    after = {row["request_id"]: row for row in rows(store, "inferences")}
    assert set(after) == {"raced", "fresh"}
    assert after["raced"] == before[0]


def test_sqlite_times_are_the_text_sqlalchemy_writes() -> None:
    """Times go to SQLite as text made without SQLAlchemy: the very text its DATETIME type writes."""
    import random
    from datetime import UTC, datetime, timezone

    from sqlalchemy.dialects import sqlite

    from infersight.sinks.store.types import sqlite_event_time, sqlite_seconds, sqlite_time
    from infersight.times import parse_time

    written = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert written is not None

    def expected(value: datetime) -> str:
        return str(written(value.astimezone(UTC).replace(tzinfo=None)))

    rng = random.Random(3)
    seconds = [rng.uniform(0, 4e9) for _ in range(2000)] + [
        0.0, 59.9999996, 1740830400.0078125, 1740830400.0234375, 253402300799.5, -1.5,
    ]  # fmt: skip
    for value in seconds:
        assert sqlite_seconds(value) == expected(datetime.fromtimestamp(value, UTC)), value
    east = timezone(timedelta(hours=5, minutes=30))
    for value in (BASE_TIME, BASE_TIME.astimezone(east), datetime(1, 1, 1, tzinfo=UTC)):
        assert sqlite_time(value) == expected(value)
    texts = [
        "2025-03-01T12:00:00Z", "2025-03-01T12:00:00.5Z", "2025-03-01T12:00:00.123456Z",
        "2025-03-01T12:00:00.123456789z", "2025-03-01t12:00:00.1Z", "2025-03-01 12:00:00.25Z",
        "2025-03-01T12:00:00,5Z", "2025-03-01T17:30:00.000001+05:30", "2025-03-01T12:00Z", "2025-03-01",
    ]  # fmt: skip
    for spelled in texts:
        value = parse_time(spelled)
        assert sqlite_event_time(value, spelled) == expected(value), spelled


def test_a_scalar_or_strided_fp32_tensor_is_stored_as_its_shortest_decimals() -> None:
    """Seldon's scalars decode to 0-d arrays, transposes to strided ones: both reach the JSON column."""
    import numpy as np
    import orjson

    from infersight.records import Payload, Tensor
    from infersight.sinks.store.tensors import payload_text

    scalar = Payload("seldon", (Tensor("x", np.array(0.1, dtype=np.float32)),))
    assert orjson.loads(payload_text(scalar, "input")[0])[0]["data"] == 0.1
    strided = np.arange(6, dtype=np.float32).reshape(2, 3).T
    columns = Payload("seldon", (Tensor("y", strided),))
    assert orjson.loads(payload_text(columns, "input")[0])[0]["data"] == [[0, 3], [1, 4], [2, 5]]
