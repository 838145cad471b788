"""Schemathesis against the OpenAPI documents of the real ingest and the real query API.

Each API is a real process: the ingest on the session's Kafka, ``infersight api`` on a SQLite and
on a PostgreSQL store with rows in them, and the ingest again with bearer tokens and the query API
mounted. Schemathesis reads the OpenAPI document each process serves and sends the requests it
generates from it, valid and invalid. Every answer must be documented (status, content type,
headers, body schema), none may be a 5xx, and the process must still be up afterwards. With tokens
configured, the same requests without a token, or with a wrong one, get 401 and nothing else.

Schemathesis is used as a library (its Hypothesis strategies and checks), not through its pytest
plugin: the plugin's fixture-based loader, which a schema served by a process started in a fixture
needs, does not run on pytest 9.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import APIOperation, BaseSchema, Case, CheckFunction, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infersight.records import Detection
from infersight.sinks.store import SqlStore
from tests.helpers import Ingest, run_ingest, serve
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

TOKENS = ("t1", "t2")
TOKENS_ENV = '["t1","t2"]'
AUTH = {"Authorization": f"Bearer {TOKENS[0]}"}

#: Examples per operation and mode: each case is a real request, and a locked one is three or more.
FUZZ = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
LOCKED = settings(FUZZ, max_examples=10)

#: What every answer is checked for. ``positive_data_acceptance`` is left out on purpose: a cursor or a
#: detection id is any string to the schema, and one the store never made is a documented 400.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

#: The status of each case sent, by API, mode and operation, for the summary at the end (``pytest -s``).
SENT: defaultdict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    yield
    for label, statuses in sorted(SENT.items()):
        print(f"schemathesis: {statuses.total():4d} cases  {label}  {dict(sorted(statuses.items()))}")


# --- the processes ---------------------------------------------------------------------------------------


def populate(url: str) -> str:
    """Fill the store at ``url`` with inferences (some flagged, some labelled) and two drift detections."""
    store = SqlStore(url)
    records = [
        record(
            f"iris-{n:02d}",
            v1_request([[5.0 + n / 10, 3.0, 1.5, 0.2]]),
            v1_response([n % 3]),
            model=IRIS_CANARY if n % 2 else IRIS,
            offset_s=n,
            scores=(outlier_score(2.0 if n % 5 == 0 else 0.1), adversarial_score(0.9 if n % 7 == 0 else 0.1)),
        )
        for n in range(12)
    ]
    records += [
        record(f"digit-{n}", v1_request([[0.0] * 64]), v1_response([n]), model=DIGITS, offset_s=n)
        for n in range(3)
    ]
    detections = [
        Detection(
            id=name,
            detector="ks",
            kind="drift",
            model=IRIS,
            detected=detected,
            statistic=0.5,
            p_value=0.01 if detected else 0.5,
            threshold=0.05,
            window_start=(BASE_TIME + timedelta(seconds=start)).timestamp(),
            window_end=(BASE_TIME + timedelta(seconds=start + 4)).timestamp(),
            request_ids=ids,
            instances=len(ids) or 5,
        )
        for name, start, detected, ids in (("window-a", 2, True, ()), ("window-b", 6, False, ("iris-06",)))
    ]
    store.write(
        records, detections, [feedback_event("fb-1", "iris-01", 1), feedback_event("fb-2", "iris-02", 0)]
    )
    store.close()
    return url


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return populate(f"sqlite:///{tmp_path_factory.mktemp('openapi-store') / 'store.db'}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The open query API runs on both stores: PostgreSQL refuses values that SQLite takes."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_store"))
    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return populate(create_database(server, f"openapi_{uuid.uuid4().hex[:12]}"))


@contextlib.contextmanager
def run_query_api(store_url: str, log_dir: Path, **env: str) -> Iterator[str]:
    """``infersight api`` in its own process over ``store_url``; yields its base URL."""
    environment = {**os.environ, "INFERSIGHT_STORE__URL": store_url, **env}
    with serve("api", log_dir, environment, "/healthz") as (process, url, log):
        yield url
        assert process.poll() is None, f"the query API exited: {log.read_text()}"


@pytest.fixture(scope="module")
def query_api(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_query_api(store_url, tmp_path_factory.mktemp("api")) as url:
        yield url


@pytest.fixture(scope="module")
def locked_query_api(sqlite_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_query_api(
        sqlite_store, tmp_path_factory.mktemp("api"), INFERSIGHT_API__AUTH_TOKENS=TOKENS_ENV
    ) as url:
        yield url


@pytest.fixture(scope="module")
def open_ingest(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    """An ingest of its own: what the fuzzing sends must not land in other tests' topics."""
    with run_ingest(
        kafka_bootstrap,
        f"test.openapi.{uuid.uuid4().hex[:8]}",
        tmp_path_factory.mktemp("ingest"),
        INFERSIGHT_INGEST__MAX_BODY_BYTES="65536",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def locked_ingest(
    kafka_bootstrap: str, sqlite_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ingest]:
    """The ingest with tokens on its event routes and the query API mounted, with tokens of its own."""
    with run_ingest(
        kafka_bootstrap,
        f"test.openapi.{uuid.uuid4().hex[:8]}",
        tmp_path_factory.mktemp("ingest"),
        INFERSIGHT_INGEST__MAX_BODY_BYTES="65536",
        INFERSIGHT_INGEST__AUTH_TOKENS=TOKENS_ENV,
        INFERSIGHT_API__ENABLED="true",
        INFERSIGHT_API__AUTH_TOKENS=TOKENS_ENV,
        INFERSIGHT_STORE__URL=sqlite_store,
    ) as running:
        yield running


def still_up(url: str) -> None:
    answer = httpx.get(f"{url}/healthz", timeout=10)
    assert answer.status_code == 200, answer.text


# --- the schemas, as each process serves them, and the fuzzing ------------------------------------------


def load(url: str) -> BaseSchema:
    """The document the process serves. Both APIs ignore query parameters they do not know (as HTTP APIs
    do), so invalid requests are not made by adding some."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=30)
    schema.config.generation.update(allow_extra_parameters=False)
    return schema


def operations(schema: BaseSchema) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def takes_input(operation: APIOperation) -> bool:
    """Whether the operation has parameters or a body: without any there is no invalid request to make."""
    return bool(operation.definition.raw.get("parameters") or operation.definition.raw.get("requestBody"))


def fuzz(schema: BaseSchema, api: str, send: Callable[[Case], int], examples: settings = FUZZ) -> None:
    """Every operation of ``schema``, valid requests then invalid ones, each through ``send``."""
    for operation in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not takes_input(operation):
                continue
            label = f"{api:14} {mode.value:8} {operation.label}"
            fuzz_one(operation.as_strategy(generation_mode=mode), SENT[label], send, examples)


def fuzz_one(
    cases: SearchStrategy[Case], statuses: Counter[int], send: Callable[[Case], int], examples: settings
) -> None:
    @examples
    @given(case=cases)
    def run(case: Case) -> None:
        statuses[send(case)] += 1

    run()


def checks_for(case: Case) -> list[CheckFunction]:
    """``CHECKS``, less ``negative_data_rejection`` on the event routes: with ``ce-*`` headers any body
    is an event's data (binary mode), which no OpenAPI document can tie to the headers."""
    if case.operation.method.upper() == "POST":
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


def call_and_check(case: Case) -> int:
    return case.call_and_validate(checks=checks_for(case), timeout=30).status_code


def expect_refused(case: Case, authorization: str | None) -> None:
    """Without a token (or with a wrong one) the answer is 401 with a JSON error, whatever else was sent."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if authorization is not None:
        headers["Authorization"] = authorization
    case.headers = headers
    answer = case.call(timeout=30)
    assert answer.status_code == 401, (answer.status_code, answer.text[:300], case.as_curl_command())
    assert answer.headers["content-type"][0].startswith("application/json")
    assert isinstance(answer.json()["error"], str)


def locked(case: Case, open_paths: tuple[str, ...]) -> int:
    """With a token every check passes; without one, or with a wrong one, the answer is 401.

    ``ignored_auth`` retries the request without the token and with a wrong one wherever the document
    declares the scheme. ``negative_data_rejection`` is left out: the case is sent with a good token,
    which makes valid a case whose only invalid part was its Authorization header.
    """
    checks = [check for check in checks_for(case) if check is not negative_data_rejection]
    status = case.call_and_validate(checks=[*checks, ignored_auth], headers=AUTH, timeout=30).status_code
    if case.operation.path not in open_paths:
        expect_refused(case, None)
        expect_refused(case, "Bearer t3")
    return status


def forged_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- the tests -------------------------------------------------------------------------------------------


def test_ingest_answers_every_generated_request(open_ingest: Ingest) -> None:
    ingest = open_ingest
    schema = load(ingest.url)
    assert {"POST /", "POST /events", "GET /healthz", "GET /readyz"} <= {o.label for o in operations(schema)}
    fuzz(schema, "ingest", call_and_check)
    still_up(ingest.url)


def test_query_api_answers_every_generated_request(query_api: str, store_url: str) -> None:
    schema = load(query_api)
    assert {"GET /v1/models", "GET /v1/payloads", "GET /v1/detections"} <= {
        o.label for o in operations(schema)
    }
    fuzz(schema, f"api/{store_url.split(':')[0]}", call_and_check)
    still_up(query_api)


@pytest.mark.parametrize(
    "cursor",
    [
        ["2025-03-01T12:00:00", 1],  # no zone
        ["0001-01-01T00:00:00+01:00", 1],  # before the first UTC instant
        ["2025-03-01T12:00:00+00:00", 2**64 - 1],  # past any 64-bit id
        ["2025-03-01T12:00:00+00:00", "x\u0000"],  # NUL, which PostgreSQL text cannot hold
        ["2025-03-01T12:00:00+00:00", True],
        ["2025-03-01T12:00:00+00:00", 1, 2],
        "not a list",
    ],
)
def test_query_api_refuses_forged_cursors(query_api: str, cursor: object) -> None:
    """A cursor is opaque but only base64 JSON: a forged one gets 400, not the store's own error."""
    for path in ("/v1/payloads", "/v1/detections"):
        answer = httpx.get(f"{query_api}{path}", params={"cursor": forged_cursor(cursor)}, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text)
        assert answer.json() == {"error": "invalid cursor: pass back the next_cursor of the previous page"}


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("2025-03-01T12:00:28Z", 200),
        ("2025-03-01t13:00:28+01:00", 200),
        ("2025-03-01T12:00:28", 200),  # no zone: UTC, as the CLI reads it
        ("15m", 200),  # an age back from now, as in the CLI
        ("0.0", 400),  # a number, which pydantic alone takes as Unix seconds
        ("0001-01-01T00:00:00+01:00", 400),  # before the first UTC instant
    ],
)
def test_query_api_takes_the_clis_times_only(query_api: str, since: str, status: int) -> None:
    for path in ("/v1/payloads", "/v1/detections"):
        for name in ("since", "until"):
            answer = httpx.get(f"{query_api}{path}", params={name: since}, timeout=30)
            assert answer.status_code == status, (path, name, answer.text)


@pytest.mark.parametrize("name", ["namespace", "inferenceservice", "endpoint", "detection", "detector"])
def test_query_api_refuses_nul_in_filters(query_api: str, name: str) -> None:
    """PostgreSQL text cannot hold NUL: such a filter is a 400 on every store, not a database error."""
    for path in ("/v1/payloads", "/v1/detections"):
        answer = httpx.get(f"{query_api}{path}", params={name: "iris\x00"}, timeout=30)
        if name == ("detector" if path == "/v1/payloads" else "detection"):
            assert answer.status_code == 200, answer.text  # not a parameter of this route: ignored
        else:
            assert answer.status_code == 400, (path, answer.status_code, answer.text)
            assert answer.json() == {"error": f"{name} must not contain NUL characters"}


def test_locked_ingest_refuses_requests_without_a_token(locked_ingest: Ingest) -> None:
    schema = load(locked_ingest.url)
    assert "GET /v1/payloads" in {o.label for o in operations(schema)}  # the query API, mounted
    fuzz(schema, "ingest+tokens", lambda case: locked(case, ("/healthz", "/readyz")), LOCKED)
    still_up(locked_ingest.url)


def test_locked_ingest_asks_for_the_token_before_reading_anything_else(locked_ingest: Ingest) -> None:
    """A header that is not UTF-8 is a 400 for a client with a token, but 401 for one without."""
    headers = [(b"ce-specversion", b"1.0"), (b"ce-id", b"\xff\xfe"), (b"content-type", b"application/json")]
    for authorization, status in ((None, 401), (b"Bearer t3", 401), (b"Bearer t2", 400)):
        sent = headers if authorization is None else [*headers, (b"authorization", authorization)]
        answer = httpx.post(f"{locked_ingest.url}/", headers=sent, content=b"{}", timeout=30)
        assert answer.status_code == status, (authorization, answer.text)


def test_locked_query_api_refuses_requests_without_a_token(locked_query_api: str) -> None:
    fuzz(load(locked_query_api), "api+tokens", lambda case: locked(case, ("/healthz",)), LOCKED)
    still_up(locked_query_api)
