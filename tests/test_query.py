"""Query filters, keyset pagination and the HTTP API over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from infersight.cli.app import app as cli
from infersight.config import ApiConfig
from infersight.records import Detection
from infersight.sinks.api import create_query_app
from infersight.sinks.store import SqlStore
from infersight.sinks.store.filters import DetectionFilter, PayloadFilter, QueryError
from infersight.sinks.store.query import count_payloads, list_detections, list_models, list_payloads
from tests.store_data import (
    BASE_TIME,
    DIGITS,
    IRIS,
    IRIS_CANARY,
    adversarial_score,
    feedback_event,
    outlier_score,
    record,
    v1_request,
    v1_response,
)

ROWS = 30


def drift(
    detection_id: str, start_s: float, end_s: float, detected: bool, request_ids: tuple[str, ...] = ()
) -> Detection:
    return Detection(
        id=detection_id,
        detector="ks",
        kind="drift",
        model=IRIS,
        detected=detected,
        statistic=0.5,
        p_value=0.01 if detected else 0.5,
        threshold=0.05,
        window_start=BASE_TIME.timestamp() + start_s,
        window_end=BASE_TIME.timestamp() + end_s,
        request_ids=request_ids,
        instances=len(request_ids) or 5,
    )


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """30 iris inferences a second apart (every 5th an outlier, every 7th adversarial, canary for odd
    ones), 3 digits inferences, a drift window over seconds 10-14, a quiet window over 20-24."""
    opened = SqlStore(store_url)
    records = [
        record(
            f"iris-{n:02d}",
            v1_request([[5.0 + n / 10, 3.0, 1.5, 0.2]]),
            v1_response([n % 3]),
            model=IRIS_CANARY if n % 2 else IRIS,
            offset_s=n,
            scores=(outlier_score(2.0 if n % 5 == 0 else 0.1), adversarial_score(0.9 if n % 7 == 0 else 0.1)),
        )
        for n in range(ROWS)
    ]
    records += [
        record(f"digit-{n}", v1_request([[0.0] * 64]), v1_response([n]), model=DIGITS, offset_s=n)
        for n in range(3)
    ]
    opened.write(
        records,
        [drift("window-a", 10, 14, True), drift("window-b", 20, 24, False, ("iris-20", "iris-22"))],
        [feedback_event("fb-1", "iris-01", 1), feedback_event("fb-2", "iris-02", 0)],
    )
    yield opened
    opened.close()


def ids(where: PayloadFilter, store: SqlStore) -> list[str]:
    return [p.request_id for p in list_payloads(store.engine, where, limit=1000).items]


def test_every_page_once_newest_first(store: SqlStore) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = list_payloads(
            store.engine, PayloadFilter(inferenceservice="iris"), limit=7, cursor=cursor, detail=False
        )
        seen += [p.request_id for p in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 5
    assert seen == [f"iris-{n:02d}" for n in reversed(range(ROWS))]


def test_filters_by_model_endpoint_and_time(store: SqlStore) -> None:
    assert ids(PayloadFilter(namespace="vision"), store) == ["digit-2", "digit-1", "digit-0"]
    canary = ids(PayloadFilter(inferenceservice="iris", endpoint="canary"), store)
    assert canary == [f"iris-{n:02d}" for n in reversed(range(1, ROWS, 2))]
    window = PayloadFilter(
        inferenceservice="iris",
        since=BASE_TIME + timedelta(seconds=5),
        until=BASE_TIME + timedelta(seconds=8),
    )
    assert ids(window, store) == ["iris-07", "iris-06", "iris-05"]
    assert count_payloads(store.engine, window) == 3


def test_filters_by_flags_and_labels(store: SqlStore) -> None:
    outliers = ids(PayloadFilter(inferenceservice="iris", outlier=True), store)
    assert outliers == [f"iris-{n:02d}" for n in reversed(range(0, ROWS, 5))]
    adversarial = ids(PayloadFilter(inferenceservice="iris", adversarial=True), store)
    assert adversarial == [f"iris-{n:02d}" for n in reversed(range(0, ROWS, 7))]
    clean = ids(PayloadFilter(outlier=False, adversarial=False), store)
    assert len(clean) == ROWS - len(set(outliers) | set(adversarial)) + 3  # digits ran no detector
    assert ids(PayloadFilter(labelled=True), store) == ["iris-02", "iris-01"]


def test_filters_by_drift_windows(store: SqlStore) -> None:
    # The drift window is the default endpoint's: canary inferences at the same time are outside it.
    assert ids(PayloadFilter(in_drift=True), store) == ["iris-14", "iris-12", "iris-10"]
    assert len(ids(PayloadFilter(in_drift=False), store)) == ROWS + 3 - 3
    assert ids(PayloadFilter(detection="window-a"), store) == ["iris-14", "iris-12", "iris-10"]
    assert ids(PayloadFilter(detection="window-b"), store) == ["iris-22", "iris-20"]  # by its request ids
    with pytest.raises(QueryError, match="no detection"):
        ids(PayloadFilter(detection="nope"), store)


def test_detections_and_models(store: SqlStore) -> None:
    drifted = list_detections(store.engine, DetectionFilter(detected=True)).items
    assert [d.id for d in drifted] == ["window-a"]
    overlapping = DetectionFilter(since=BASE_TIME + timedelta(seconds=22), kind="drift")
    assert [d.id for d in list_detections(store.engine, overlapping).items] == ["window-b"]
    first = list_detections(store.engine, DetectionFilter(), limit=1)
    second = list_detections(store.engine, DetectionFilter(), limit=1, cursor=first.next_cursor)
    assert [first.items[0].id, second.items[0].id] == ["window-b", "window-a"] and second.next_cursor is None

    models = {(m.inferenceservice, m.endpoint): m for m in list_models(store.engine)}
    assert set(models) == {("iris", "default"), ("iris", "canary"), ("digits", "default")}
    default = models[("iris", "default")]
    assert (default.inferences, default.outliers, default.labelled, default.accuracy) == (15, 3, 1, 0.0)
    assert default.detections == 2 and default.drift_detected == 1
    assert models[("iris", "canary")].accuracy == 1.0
    assert default.last_seen == BASE_TIME + timedelta(seconds=28)


HOSTILE = ("models' OR '1'='1", "x'; DROP TABLE inferences; --", 'x"); DELETE FROM detections; --')


def test_filter_values_are_bound_not_spliced(store: SqlStore) -> None:
    for value in HOSTILE:
        for name in ("namespace", "inferenceservice", "component", "endpoint"):
            assert ids(PayloadFilter(**{name: value}), store) == []
        with pytest.raises(QueryError, match="no detection with id"):
            ids(PayloadFilter(detection=value), store)
        for name in ("namespace", "inferenceservice", "component", "endpoint", "detector", "kind"):
            assert list_detections(store.engine, DetectionFilter(**{name: value})).items == []
    assert count_payloads(store.engine, PayloadFilter()) == ROWS + 3
    assert len(list_detections(store.engine, DetectionFilter()).items) > 0


def test_no_sql_is_assembled_from_strings_in_the_package() -> None:
    """Every statement is a SQLAlchemy expression; raw SQL is allowed only for constant statements."""
    import ast
    from pathlib import Path

    import infersight

    raw: list[str] = []
    for path in Path(infersight.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "text",
                "exec_driver_sql",
                "execute",
            ):
                argument = node.args[0] if node.args else None
                if isinstance(argument, ast.JoinedStr | ast.BinOp) or (
                    isinstance(argument, ast.Call) and getattr(argument.func, "attr", "") == "format"
                ):
                    raw.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert raw == [
        "migrate.py:55 connection.exec_driver_sql(f'SELECT pg_advisory_xact_lock({MIGRATION_LOCK})')"
    ]


def test_http_api_pages_filters_and_documents_itself(store: SqlStore) -> None:
    client = TestClient(create_query_app(store.engine, ApiConfig(auth_tokens=[SecretStr("s3cret")])))
    assert client.get("/v1/models").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).json() == {
        "error": "invalid bearer token"
    }

    models = client.get("/v1/models", headers=auth).json()
    assert {(m["inferenceservice"], m["endpoint"], m["inferences"]) for m in models} == {
        ("iris", "default", 15),
        ("iris", "canary", 15),
        ("digits", "default", 3),
    }
    page = client.get(
        "/v1/payloads",
        params={"model": "x", "inferenceservice": "iris", "outlier": "true", "limit": 4},
        headers=auth,
    ).json()
    assert [p["request_id"] for p in page["items"]] == ["iris-25", "iris-20", "iris-15", "iris-10"]
    assert page["items"][0]["inputs"][0]["data"] == [[7.5, 3.0, 1.5, 0.2]]
    rest = client.get(
        "/v1/payloads",
        params={"inferenceservice": "iris", "outlier": "true", "limit": 4, "cursor": page["next_cursor"]},
        headers=auth,
    ).json()
    assert [p["request_id"] for p in rest["items"]] == ["iris-05", "iris-00"] and rest["next_cursor"] is None
    bodies = client.get(
        "/v1/payloads", params={"namespace": "vision", "limit": 1, "bodies": "true"}, headers=auth
    ).json()
    assert bodies["items"][0]["request_body"]  # base64 of the raw body
    by_component = {
        component: client.get(
            "/v1/payloads", params={"inferenceservice": "iris", "component": component}, headers=auth
        ).json()["items"]
        for component in ("predictor", "transformer")
    }
    assert len(by_component["predictor"]) == ROWS and by_component["transformer"] == []
    assert {p["component"] for p in by_component["predictor"]} == {"predictor"}
    assert (
        client.get("/v1/detections", params={"component": "transformer"}, headers=auth).json()["items"] == []
    )

    detections = client.get(
        "/v1/detections", params={"kind": "drift", "detected": "true"}, headers=auth
    ).json()
    assert [d["id"] for d in detections["items"]] == ["window-a"]
    assert client.get("/v1/payloads", params={"cursor": "garbage"}, headers=auth).status_code == 400
    too_small = client.get("/v1/payloads", params={"limit": 0}, headers=auth)
    assert too_small.status_code == 400
    assert too_small.json() == {"error": "limit: Input should be greater than or equal to 1"}
    assert (
        client.get("/v1/payloads", params={"since": "2025-03-01T12:00:28Z"}, headers=auth).json()["items"][0][
            "request_id"
        ]
        == "iris-29"
    )
    schema = client.get("/openapi.json").json()
    assert {"/v1/models", "/v1/payloads", "/v1/detections"} <= set(schema["paths"])


def test_cli_query_lists_payloads_detections_and_models(store: SqlStore) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli, ["query", "--store", url, "--model", "iris", "--outlier", "--json"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 6 and '"outlier":true' in lines[0]
    models = runner.invoke(cli, ["query", "models", "--store", url])
    assert models.exit_code == 0 and "vision/digits" in models.stdout
    detections = runner.invoke(cli, ["query", "detections", "--store", url, "--kind", "drift", "--json"])
    assert detections.exit_code == 0 and detections.stdout.count('"kind":"drift"') == 2
    transformer = runner.invoke(cli, ["query", "--store", url, "--component", "transformer", "--json"])
    assert transformer.exit_code == 0 and '"request_id"' not in transformer.stdout
    predictor = runner.invoke(
        cli, ["query", "--store", url, "--component", "predictor", "--limit", "1", "--json"]
    )
    assert predictor.exit_code == 0 and '"component":"predictor"' in predictor.stdout
    bad = runner.invoke(cli, ["query", "--store", url, "--since", "last week"])
    assert bad.exit_code != 0
    nothing = runner.invoke(cli, ["query", "--store", url, "--model", "nothing"])
    assert nothing.exit_code == 0 and "no payloads match these filters" in nothing.stderr
    # Every field, nulls and annotations included.
    one = runner.invoke(cli, ["query", "--store", url, "--model", "iris", "--limit", "1", "--json"])
    fields = json.loads(one.stdout.splitlines()[0])
    assert {"annotations", "label_time", "request_body"} <= set(fields) and fields["label_time"] is None


def test_cli_query_and_help_read_well_at_80_columns(store: SqlStore) -> None:
    """No line past 80 columns is cut or wrapped inside an id, and ids come out whole."""
    url = store.engine.url.render_as_string(hide_password=False)
    runner = CliRunner(env={"COLUMNS": "80"})
    detections = runner.invoke(cli, ["query", "detections", "--store", url])
    assert detections.exit_code == 0, detections.output
    assert "id window-a" in detections.stdout and "id window-b" in detections.stdout
    payloads = runner.invoke(cli, ["query", "--store", url, "--model", "iris", "--limit", "30"])
    ids = [line.split("request id ")[1] for line in payloads.stdout.splitlines() if "request id " in line]
    assert sorted(ids) == [f"iris-{n:02d}" for n in range(30)]
    for command in (
        ["--help"],
        ["query", "--help"],
        ["export", "--help"],
        ["up", "--help"],
        ["tail", "--help"],
    ):
        shown = runner.invoke(cli, command)
        assert shown.exit_code == 0, shown.output
        assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
        assert "…" not in shown.stdout, shown.stdout


def test_the_ingest_serves_the_query_api_when_enabled(store: SqlStore) -> None:
    from infersight.config import Settings
    from infersight.ingest.app import create_api

    url = store.engine.url.render_as_string(hide_password=False)
    settings = Settings.model_validate({"store": {"url": url}, "api": {"enabled": True}})
    api, _ = create_api(settings)
    client = TestClient(api)  # no lifespan: the Kafka producer is not started, the query routes need none
    models = client.get("/v1/models").json()
    assert {m["inferenceservice"] for m in models} == {"iris", "digits"}
    disabled, _ = create_api(Settings.model_validate({"store": {"url": url}}))
    assert TestClient(disabled).get("/v1/models").status_code == 404


def test_http_api_errors_and_times_are_the_clis(store: SqlStore) -> None:
    """400 ``{"error": ...}`` for every malformed parameter; the CLI's ages; no 422 documented."""
    client = TestClient(create_query_app(store.engine, ApiConfig()))
    for params, message in (
        ({"since": "last week"}, "since: expected a time such as 2025-03-01T12:00:00Z or an age such as 15m"),
        ({"outlier": "maybe"}, "outlier: Input should be a valid boolean"),
        ({"kind": "weird"}, "kind: String should match pattern"),
    ):
        path = "/v1/detections" if "kind" in params else "/v1/payloads"
        answer = client.get(path, params=params)
        assert answer.status_code == 400, answer.text
        assert set(answer.json()) == {"error"} and answer.json()["error"].startswith(message)
    assert client.get("/v1/payloads", params={"since": "15m"}).json()["items"] == []  # stored in 2025
    assert len(client.get("/v1/payloads", params={"since": "100000d"}).json()["items"]) == ROWS + 3
    zone_less = client.get("/v1/payloads", params={"since": "2025-03-01 12:00:28"}).json()["items"]
    assert [p["request_id"] for p in zone_less] == ["iris-29", "iris-28"]  # UTC, as in the CLI
    schema = client.get("/openapi.json").json()
    responses = [op["responses"] for path in schema["paths"].values() for op in path.values()]
    assert responses and not any("422" in r for r in responses)
    assert all(
        "400" in r for r, path in zip(responses, schema["paths"], strict=False) if path.startswith("/v1")
    )


def test_docs_and_ui_are_served_from_the_package(store: SqlStore) -> None:
    client = TestClient(create_query_app(store.engine, ApiConfig()))
    docs = client.get("/docs")
    assert docs.status_code == 200 and "static/swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.text.replace('"/openapi.json"', "").split("<body>")[0].lower().replace(
        "http-equiv", ""
    )
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "ui.js", "ui.css"):
        answer = client.get(f"/static/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 1000, asset
    assert client.get("/redoc").status_code == 404  # ReDoc only comes from a CDN
    page = client.get("/ui", follow_redirects=True)
    assert page.status_code == 200 and page.url.path == "/ui/" and "../static/ui.js" in page.text


def test_timeline_counts_traffic_flags_and_labels_per_bucket(store: SqlStore) -> None:
    client = TestClient(create_query_app(store.engine, ApiConfig()))
    since, until = BASE_TIME.isoformat(), (BASE_TIME + timedelta(seconds=30)).isoformat()
    params = {"inferenceservice": "iris", "endpoint": "default", "since": since, "until": until, "buckets": 3}
    buckets = client.get("/v1/timeline", params=params).json()["buckets"]
    assert [b["inferences"] for b in buckets] == [5, 5, 5]  # even n: 0-8, 10-18, 20-28
    assert [b["outliers"] for b in buckets] == [1, 1, 1]  # n = 0, 10, 20
    assert [b["adversarial"] for b in buckets] == [1, 1, 1]  # n = 0, 14, 28
    # iris-02 predicted 2, labelled 0
    assert [(b["labelled"], b["correct"]) for b in buckets] == [(1, 0), (0, 0), (0, 0)]
    assert buckets[0]["start"].startswith("2025-03-01T12:00:00") and buckets[2]["end"].startswith(
        "2025-03-01T12:00:30"
    )
    whole = client.get("/v1/timeline", params={"inferenceservice": "iris", "buckets": 1}).json()["buckets"]
    assert [b["inferences"] for b in whole] == [ROWS]
    assert client.get("/v1/timeline", params={"inferenceservice": "nothing"}).json() == {"buckets": []}


def test_a_windows_features_beside_the_traffic_judged_normal_before_it(store: SqlStore) -> None:
    window = Detection(
        id="window-f",
        detector="ks",
        kind="drift",
        model=IRIS,
        detected=True,
        statistic=0.9,
        p_value=0.001,
        threshold=0.0125,
        window_start=BASE_TIME.timestamp() + 10,
        window_end=BASE_TIME.timestamp() + 14,
        request_ids=(),
        instances=3,
        features=("input_0", "input_1"),
        feature_statistics=(1.0, 0.0),
        feature_p_values=(0.001, 1.0),
    )
    store.write([], [window], [])
    client = TestClient(create_query_app(store.engine, ApiConfig()))
    answer = client.get("/v1/detections/window-f/distributions", params={"bins": 4}).json()
    assert answer["threshold"] == 0.0125 and [f["feature"] for f in answer["features"]] == [
        "input_0",
        "input_1",
    ]
    first = answer["features"][0]
    # The window: default-endpoint inferences at 10, 12, 14 s (6.0, 6.2, 6.4); the reference those
    # at 0-8 s, before the window and outside window-a's drift (5.0 ... 5.8).
    # Four bins of 0.35 from 5.0 to 6.4, shared by both.
    assert first["current"] == {"count": 3, "counts": [0, 0, 1, 2]}
    assert first["reference"] == {"count": 5, "counts": [2, 2, 1, 0]}
    assert first["edges"][0] == 5.0 and abs(first["edges"][-1] - 6.4) < 1e-9
    assert first["p_value"] == 0.001 and answer["features"][1]["current"]["count"] == 3
    chosen = client.get(
        "/v1/detections/window-f/distributions",
        params={
            "reference_since": BASE_TIME.isoformat(),
            "reference_until": (BASE_TIME + timedelta(seconds=3)).isoformat(),
        },
    ).json()
    assert chosen["features"][0]["reference"]["count"] == 2  # 0 s and 2 s
    missing = client.get("/v1/detections/nothing/distributions")
    assert missing.status_code == 400 and missing.json() == {"error": "no detection with id 'nothing'"}
