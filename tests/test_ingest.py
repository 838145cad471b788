"""The ingest against a real broker: every mode in, every attribute, key and body byte out."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from infersight.eventformat import BODY_ERROR
from tests.certs import make_certificates
from tests.helpers import Ingest, read_topic, run_ingest, topic_size

KSERVE_V1_REQUEST = b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
KSERVE_V1_RESPONSE = b'{"predictions": [1, 1]}'
OIP_V2_REQUEST = (
    b'{"id": "42", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32",'
    b' "data": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6]}]}'
)


def kserve_headers(event_id: str, kind: str, **extra: str) -> dict[str, str]:
    """Headers exactly as the KServe logger sends them (binary mode)."""
    return {
        "Content-Type": "application/json",
        "Ce-Specversion": "1.0",
        "Ce-Id": event_id,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Type": f"org.kubeflow.serving.inference.{kind}",
        "Ce-Time": "2026-11-25T10:15:30.123456789Z",
        "Ce-Inferenceservicename": "iris",
        "Ce-Namespace": "models",
        "Ce-Component": "predictor",
        "Ce-Endpoint": "canary",
        "Ce-Metadata": '{"Content-Type":["application/json"],"X-Request-Id":["r-1"]}',
        "Ce-Annotations": '{"serving.kserve.io/deploymentMode":"Serverless"}',
        "Ce-Recordedtime": "2026-11-25T10:15:30.130000000Z",
        **extra,
    }


def seldon_headers(request_id: str, kind: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Ce-Specversion": "1.0",
        "Ce-Id": str(uuid.uuid4()),
        "Ce-Source": "http://income-classifier-default.seldon:8000/",
        "Ce-Type": f"io.seldon.serving.inference.{kind}",
        "Ce-Requestid": request_id,
        "Ce-Modelid": "classifier",
        "Ce-Inferenceservicename": "income",
        "Ce-Namespace": "seldon",
        "Ce-Endpoint": "default",
        "Ce-Protocol": "seldon",
    }


def by_id(records: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for record in records:
        headers = dict(record.headers)
        found.setdefault(headers["ce_id"].decode(), []).append(record)
    return found


def expect_record(record: Any, headers: dict[str, str], body: bytes, key: bytes) -> None:
    """The Kafka record carries every attribute as sent, the key and the body byte for byte."""
    kafka_headers = dict(record.headers)
    expected = {
        ("content-type" if name.lower() == "content-type" else "ce_" + name.lower()[3:]): value.encode()
        for name, value in headers.items()
        if name.lower().startswith("ce-") or name.lower() == "content-type"
    }
    if "Content-Encoding" in headers:
        expected["content-encoding"] = headers["Content-Encoding"].encode()
    assert kafka_headers == expected
    assert record.key == key
    assert record.value == body


def post(ingest: Ingest, headers: dict[str, str], body: bytes, path: str = "/") -> httpx.Response:
    return httpx.post(ingest.url + path, headers=headers, content=body, timeout=30)


def test_kserve_pair_round_trip(ingest: Ingest, kafka_bootstrap: str) -> None:
    event_id = str(uuid.uuid4())
    request = kserve_headers(event_id, "request")
    response = kserve_headers(event_id, "response")
    assert post(ingest, request, KSERVE_V1_REQUEST).status_code == 202
    answer = post(ingest, response, KSERVE_V1_RESPONSE, "/events")
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1}

    records = by_id(read_topic(kafka_bootstrap, ingest.topic))[event_id]
    assert len(records) == 2
    sent = {"org.kubeflow.serving.inference.request": (request, KSERVE_V1_REQUEST)}
    sent["org.kubeflow.serving.inference.response"] = (response, KSERVE_V1_RESPONSE)
    for record in records:
        headers, body = sent[dict(record.headers)["ce_type"].decode()]
        expect_record(record, headers, body, b"models/iris")
    # Same key, same partition: the pair stays together for the worker that pairs it.
    assert records[0].partition == records[1].partition


def test_open_inference_protocol_v2_body(ingest: Ingest, kafka_bootstrap: str) -> None:
    event_id = str(uuid.uuid4())
    headers = kserve_headers(event_id, "request", **{"Ce-Endpoint": ""})
    assert post(ingest, headers, OIP_V2_REQUEST).status_code == 202
    (record,) = by_id(read_topic(kafka_bootstrap, ingest.topic))[event_id]
    expect_record(record, headers, OIP_V2_REQUEST, b"models/iris")


def test_seldon_gzip_pair_round_trip(ingest: Ingest, kafka_bootstrap: str) -> None:
    request_id = str(uuid.uuid4())
    bodies = {
        "request": gzip.compress(b'{"data": {"names": ["age", "hours"], "ndarray": [[39, 40]]}}'),
        "response": gzip.compress(b'{"data": {"names": ["p0", "p1"], "ndarray": [[0.9, 0.1]]}}'),
    }
    sent = {}
    for kind, body in bodies.items():
        headers = seldon_headers(request_id, kind)
        sent[headers["Ce-Id"]] = (headers, body)
        assert post(ingest, headers, body).status_code == 202
    found = by_id(read_topic(kafka_bootstrap, ingest.topic))
    for event_id, (headers, body) in sent.items():
        (record,) = found[event_id]
        expect_record(record, headers, body, b"seldon/income")
        assert gzip.decompress(record.value).startswith(b'{"data"')


def test_gzip_body_without_content_encoding_is_recognised(ingest: Ingest, kafka_bootstrap: str) -> None:
    request_id = str(uuid.uuid4())
    headers = seldon_headers(request_id, "request")
    del headers["Content-Encoding"]
    body = gzip.compress(b'{"data": {"ndarray": [[1, 2]]}}')
    assert post(ingest, headers, body).status_code == 202
    (record,) = by_id(read_topic(kafka_bootstrap, ingest.topic))[headers["Ce-Id"]]
    assert dict(record.headers)["content-encoding"] == b"gzip"
    assert record.value == body


def test_structured_mode(ingest: Ingest, kafka_bootstrap: str) -> None:
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "urn:feedback-service",
        "type": "io.infersight.feedback",
        "time": "2026-11-25T10:15:31Z",
        "datacontenttype": "application/json",
        "namespace": "models",
        "inferenceservicename": "iris",
        "priority": 3,
        "sampled": True,
        "data": {"request_id": "abc", "truth": [2]},
    }
    answer = post(ingest, {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode())
    assert answer.status_code == 202, answer.text
    (record,) = by_id(read_topic(kafka_bootstrap, ingest.topic))[event_id]
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"] == b"2026-11-25T10:15:31Z"
    assert headers["ce_priority"] == b"3"
    assert headers["ce_sampled"] == b"true"
    assert headers["ce_type"] == b"io.infersight.feedback"
    assert record.key == b"models/iris"
    assert json.loads(record.value) == event["data"]


def test_batch_mode_with_binary_data(ingest: Ingest, kafka_bootstrap: str) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [
        {
            "specversion": "1.0",
            "id": ids[0],
            "source": "s",
            "type": "io.infersight.feedback",
            "data": {"a": 1},
        },
        {"specversion": "1.0", "id": ids[1], "source": "s", "type": "t", "data_base64": "AAECAw=="},
        {
            "specversion": "1.0",
            "id": ids[2],
            "source": "s",
            "type": "t",
            "datacontenttype": "text/plain",
            "data": "hi",
        },
    ]
    answer = post(ingest, {"Content-Type": "application/cloudevents-batch+json"}, json.dumps(batch).encode())
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 3}
    found = by_id(read_topic(kafka_bootstrap, ingest.topic))
    assert json.loads(found[ids[0]][0].value) == {"a": 1}
    assert found[ids[1]][0].value == b"\x00\x01\x02\x03"
    assert found[ids[2]][0].value == b"hi"
    assert dict(found[ids[2]][0].headers)["content-type"] == b"text/plain"


def kserve_without(name: str) -> dict[str, str]:
    return {key: value for key, value in kserve_headers("x", "request").items() if key != name}


BAD_REQUESTS = [
    pytest.param(kserve_without("Ce-Source"), KSERVE_V1_REQUEST, 400, "source missing", id="missing-source"),
    pytest.param(kserve_without("Ce-Id"), KSERVE_V1_REQUEST, 400, "id missing", id="missing-id"),
    pytest.param(kserve_without("Ce-Type"), KSERVE_V1_REQUEST, 400, "type missing", id="missing-type"),
    pytest.param(
        kserve_without("Ce-Specversion"),
        KSERVE_V1_REQUEST,
        400,
        "specversion missing",
        id="missing-specversion",
    ),
    pytest.param(kserve_headers("", "request"), KSERVE_V1_REQUEST, 400, "id", id="empty-id"),
    pytest.param(kserve_without("Ce-Id"), b"{not json", 400, "id missing", id="missing-id-and-bad-body"),
    pytest.param(
        kserve_headers("x", "request", **{"Ce-Specversion": "0.9"}),
        b"{}",
        400,
        "specversion",
        id="specversion",
    ),
    pytest.param(
        kserve_headers("x", "request", **{"Ce-Time": "yesterday"}), b"{}", 400, "time", id="bad-time"
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents+json"}, b"{not json", 400, "JSON", id="structured-not-json"
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents-batch+json"}, b"[{", 400, "JSON", id="batch-not-json"
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents+json"}, b"[1, 2]", 400, "object", id="structured-array"
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents+json"},
        b'{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "ext": {"nested": 1}}',
        400,
        "ext",
        id="structured-object-attribute",
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents-batch+json"}, b"{}", 400, "array", id="batch-not-array"
    ),
    pytest.param(
        {"Content-Type": "application/cloudevents-batch+json"},
        b'[{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, {"id": "2"}]',
        400,
        "event [1]",
        id="batch-bad-item",
    ),
    pytest.param(
        {"Content-Type": "application/json"}, KSERVE_V1_REQUEST, 415, "ce-specversion", id="plain-json"
    ),
    pytest.param({"Content-Type": "text/plain"}, b"hello", 415, "not a CloudEvent", id="text"),
    pytest.param(
        kserve_headers("x", "request", **{"Content-Encoding": "br"}), b"{}", 415, "br", id="encoding"
    ),
    pytest.param(kserve_headers("x", "request"), b"[" + b"0," * 40000 + b"0]", 413, "limit", id="too-large"),
]


@pytest.mark.parametrize(("headers", "body", "status", "mentions"), BAD_REQUESTS)
def test_bad_input_is_refused_and_changes_nothing(
    ingest: Ingest, kafka_bootstrap: str, headers: dict[str, str], body: bytes, status: int, mentions: str
) -> None:
    before = topic_size(kafka_bootstrap, ingest.topic)
    answer = post(ingest, headers, body)
    assert answer.status_code == status
    assert mentions in answer.json()["error"]
    assert topic_size(kafka_bootstrap, ingest.topic) == before
    # The process is still up and takes good events.
    assert post(ingest, kserve_headers(str(uuid.uuid4()), "request"), KSERVE_V1_REQUEST).status_code == 202


@pytest.mark.parametrize(
    ("headers", "body", "says", "key"),
    [
        pytest.param(
            kserve_headers("", "request"),
            b'{"instances": [[1, 2]',
            "not valid JSON",
            b"models/iris",
            id="truncated-json",
        ),
        pytest.param(
            kserve_headers("", "request"), b"{not json", "not valid JSON", b"models/iris", id="not-json"
        ),
        pytest.param(
            seldon_headers("", "request"),
            gzip.compress(b'{"data": {}}')[:-6],
            "not valid gzip",
            b"seldon/income",
            id="truncated-gzip",
        ),
        pytest.param(
            seldon_headers("", "request"),
            b"not gzip at all",
            "not valid gzip",
            b"seldon/income",
            id="not-gzip",
        ),
    ],
)
def test_a_body_that_does_not_parse_is_accepted_as_sent_and_marked(
    ingest: Ingest, kafka_bootstrap: str, headers: dict[str, str], body: bytes, says: str, key: bytes
) -> None:
    """The KServe logger never sends an event again: a 400 would lose it, so it is kept and marked."""
    event_id = str(uuid.uuid4())
    headers = {**headers, "Ce-Id": event_id}
    answer = post(ingest, headers, body)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"accepted": 1}
    (record,) = by_id(read_topic(kafka_bootstrap, ingest.topic))[event_id]
    mark = dict(record.headers)["ce_" + BODY_ERROR].decode()
    assert says in mark and len(mark) <= 200 and mark.isprintable()
    # Everything else exactly as sent: every attribute, the key, the body byte for byte.
    unmarked = [(name, value) for name, value in record.headers if name != "ce_" + BODY_ERROR]
    expect_record(record._replace(headers=unmarked), headers, body, key)


def test_a_mark_the_client_sends_is_not_kept(ingest: Ingest, kafka_bootstrap: str) -> None:
    """Only the ingest says a body did not parse: a client's own mark is dropped and decided again."""
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    forged = {"Ce-Infersightbodyerror": "forged by the client"}
    assert post(ingest, kserve_headers(good, "request", **forged), KSERVE_V1_REQUEST).status_code == 202
    assert post(ingest, kserve_headers(bad, "request", **forged), b"{not json").status_code == 202
    found = by_id(read_topic(kafka_bootstrap, ingest.topic))
    assert "ce_" + BODY_ERROR not in dict(found[good][0].headers)
    assert found[good][0].value == KSERVE_V1_REQUEST
    mark = dict(found[bad][0].headers)["ce_" + BODY_ERROR]
    assert mark.startswith(b"body is not valid JSON") and b"forged" not in mark


def test_gzip_bomb_is_refused(ingest: Ingest) -> None:
    bomb = gzip.compress(b"[" + b"0," * 5_000_000 + b"0]")
    assert len(bomb) < 65536
    answer = post(ingest, seldon_headers("r", "request"), bomb)
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["error"]


def test_bearer_tokens(kafka_bootstrap: str, tmp_path: Any) -> None:
    topic = f"test.auth.{uuid.uuid4().hex[:8]}"
    with run_ingest(
        kafka_bootstrap, topic, tmp_path, INFERSIGHT_INGEST__AUTH_TOKENS='["old-token", "new-token"]'
    ) as secured:
        headers = kserve_headers(str(uuid.uuid4()), "request")
        assert post(secured, headers, KSERVE_V1_REQUEST).status_code == 401
        wrong = post(secured, {**headers, "Authorization": "Bearer nope"}, KSERVE_V1_REQUEST)
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "invalid bearer token"}
        for token in ("old-token", "new-token"):
            ok = post(
                secured,
                {**kserve_headers(str(uuid.uuid4()), "request"), "Authorization": f"Bearer {token}"},
                b"{}",
            )
            assert ok.status_code == 202
        assert topic_size(kafka_bootstrap, topic) == 2
        metrics = httpx.get(f"{secured.url}/metrics").text
        assert 'infersight_ingest_rejected_total{reason="unauthorized"} 2.0' in metrics


def test_tls_with_a_bearer_token(kafka_bootstrap: str, tmp_path: Path) -> None:
    """HTTPS only, with the certificate configured; the token travels encrypted."""
    ca, keystore = make_certificates(tmp_path, "localhost")
    topic = f"test.tls.{uuid.uuid4().hex[:8]}"
    with run_ingest(
        kafka_bootstrap,
        topic,
        tmp_path,
        INFERSIGHT_INGEST__TLS__CERTFILE=str(keystore),
        INFERSIGHT_INGEST__TLS__KEYFILE=str(keystore),
        INFERSIGHT_INGEST__AUTH_TOKENS='["s3cret"]',
        INFERSIGHT_TEST_CA=str(ca),
    ) as secured:
        assert secured.url.startswith("https://")
        headers = {**kserve_headers(str(uuid.uuid4()), "request"), "Authorization": "Bearer s3cret"}
        answer = httpx.post(secured.url, headers=headers, content=KSERVE_V1_REQUEST, verify=str(ca))
        assert answer.status_code == 202
        with pytest.raises(httpx.ConnectError):  # an unknown issuer is refused by the client
            httpx.post(secured.url, headers=headers, content=KSERVE_V1_REQUEST)
        with pytest.raises(httpx.HTTPError):  # plain HTTP gets no answer
            httpx.post(secured.url.replace("https", "http"), headers=headers, content=KSERVE_V1_REQUEST)
        assert topic_size(kafka_bootstrap, topic) == 1


def test_health_readiness_metrics_and_openapi(ingest: Ingest) -> None:
    assert httpx.get(f"{ingest.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{ingest.url}/readyz").status_code == 200
    event_id = str(uuid.uuid4())
    post(ingest, kserve_headers(event_id, "request"), KSERVE_V1_REQUEST)
    post(ingest, {"Content-Type": "application/json"}, b"{}")
    metrics = httpx.get(f"{ingest.url}/metrics").text
    assert (
        'infersight_ingest_events_total{component="predictor",endpoint="canary",inferenceservice="iris",'
        'namespace="models",revision="canary",type="org.kubeflow.serving.inference.request"}'
    ) in metrics
    assert 'infersight_ingest_rejected_total{reason="unsupported_media_type"}' in metrics
    assert "infersight_ingest_request_duration_seconds_bucket" in metrics
    paths = httpx.get(f"{ingest.url}/openapi.json").json()["paths"]
    assert {"/", "/events", "/healthz", "/readyz"} <= set(paths)
