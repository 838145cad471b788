"""Per-model sampling and redaction: in the ingest before Kafka, in the worker for direct topics."""

from __future__ import annotations

import gzip
import json
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from kafka import KafkaProducer

from infersight.config import ConfigError, KafkaConfig, ModelConfig, load_settings
from infersight.kafkaclient import ensure_topics
from infersight.privacy import REDACTED, TrafficRules, redact_body, sampled_in
from infersight.records import ModelRef, RawEvent
from tests.helpers import read_topic, run_ingest, run_worker, stored_inferences, wait_until
from tests.test_ingest import kserve_headers

IRIS = ModelRef("models", "iris", "canary")
PERSON = {"instances": [{"age": 41, "email": "ada@example.com", "card": {"number": "4111"}}]}
APPLICANT = {"instances": [{"age": 41, "email": "ada@example.com"}]}


def event(request_id: str, kind: str, body: bytes, **attributes: str) -> RawEvent:
    return RawEvent(
        attributes={
            "specversion": "1.0",
            "id": request_id,
            "source": "s",
            "type": f"org.kubeflow.serving.inference.{kind}",
            "namespace": "models",
            "inferenceservicename": "iris",
            "endpoint": "canary",
            "datacontenttype": "application/json",
            **attributes,
        },
        data=body,
    )


def rules(**model: object) -> TrafficRules:
    return TrafficRules([ModelConfig(namespace="models", inferenceservice="iris", **model)], 1 << 20)


def test_sampling_keeps_the_configured_share_and_both_halves_together() -> None:
    ids = [str(uuid.uuid4()) for _ in range(4000)]
    kept = [request_id for request_id in ids if sampled_in(IRIS, request_id, 0.25)]
    assert 900 < len(kept) < 1100
    traffic = rules(sample_rate=0.25)
    for request_id in ids[:200]:
        request = traffic.apply(event(request_id, "request", b"{}"))
        response = traffic.apply(event(request_id, "response", b"{}"))
        assert (request is None) == (response is None) == (request_id not in kept)
    assert all(sampled_in(IRIS, request_id, 1.0) for request_id in ids[:10])
    assert not any(sampled_in(IRIS, request_id, 0.0) for request_id in ids[:10])


def test_redaction_replaces_named_fields_and_keeps_everything_else() -> None:
    body = json.dumps(PERSON).encode()
    redacted = json.loads(
        redact_body(body, [("instances", "*", "email"), ("instances", "0", "card")], None, 1 << 20)
    )
    assert redacted == {"instances": [{"age": 41, "email": REDACTED, "card": REDACTED}]}
    # Nothing named: the very bytes as sent.
    assert redact_body(b'{"instances": [[1, 2]]}', [("instances", "*", "email")], None, 1 << 20) == (
        b'{"instances": [[1, 2]]}'
    )
    # gzip stays gzip; NaN stays NaN.
    zipped = gzip.compress(b'{"inputs": [{"name": "ssn", "data": ["123"]}], "x": NaN}')
    out = gzip.decompress(redact_body(zipped, [("inputs", "*", "data")], "gzip", 1 << 20))
    assert out == b'{"inputs":[{"name":"ssn","data":"[REDACTED]"}],"x":NaN}'


def test_attributes_are_dropped_and_other_models_and_feedback_pass_untouched() -> None:
    traffic = rules(redact=["instances.*.email"], redact_attributes=["metadata"])
    original = event("a", "request", json.dumps(PERSON).encode(), metadata='{"Authorization":["Bearer x"]}')
    kept = traffic.apply(original)
    assert kept is not None and "metadata" not in kept.attributes
    assert b"ada@example.com" not in kept.data and b"4111" in kept.data
    other = event("b", "request", json.dumps(PERSON).encode(), inferenceservicename="wine")
    assert traffic.apply(other) is other
    feedback = RawEvent(attributes={**original.attributes, "type": "io.infersight.feedback"}, data=b"{}")
    assert traffic.apply(feedback) is feedback


def test_a_component_entry_wins_over_the_service_entry_for_that_component() -> None:
    service = ModelConfig(namespace="models", inferenceservice="iris", redact_attributes=["metadata"])
    transformer = ModelConfig(
        namespace="models", inferenceservice="iris", component="transformer", redact=["instances.*.email"]
    )
    traffic = TrafficRules([service, transformer], 1 << 20)
    body = json.dumps(PERSON).encode()
    by_transformer = traffic.apply(event("t", "request", body, component="transformer", metadata="{}"))
    assert by_transformer is not None and "metadata" in by_transformer.attributes
    assert b"ada@example.com" not in by_transformer.data
    by_predictor = traffic.apply(event("p", "request", body, component="predictor", metadata="{}"))
    assert by_predictor is not None and "metadata" not in by_predictor.attributes
    assert b"ada@example.com" in by_predictor.data
    assert traffic.rules_for(ModelRef("models", "iris", "canary", "transformer")) is not None
    assert traffic.rules_for(ModelRef("models", "iris", "canary")) == traffic.rules_for(IRIS)


def test_rules_that_cannot_work_are_refused_at_start(tmp_path: Path) -> None:
    for model, message in (
        ({"redact_attributes": ["id"]}, "id cannot be redacted"),
        ({"redact": ["instances..email"]}, "dotted keys"),
        ({"sample_rate": 1.5}, "sample_rate"),
    ):
        config = tmp_path / "infersight.yaml"
        config.write_text(yaml.safe_dump({"models": [{"namespace": "m", "inferenceservice": "x", **model}]}))
        with pytest.raises(ConfigError, match=message):
            load_settings(config)


@pytest.mark.slow
def test_only_the_sampled_share_is_stored_and_redacted_fields_never_reach_kafka_or_the_store(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"test.privacy.{uuid.uuid4().hex[:8]}"
    direct = f"{topic}.kafkasink"
    ensure_topics(KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=3), [direct])
    config = tmp_path / "infersight.yaml"
    model = {"namespace": "models", "inferenceservice": "iris", "sample_rate": 0.5}
    model |= {"redact": ["instances.*.email"], "redact_attributes": ["metadata"]}
    config.write_text(yaml.safe_dump({"models": [model]}))
    store = tmp_path / "privacy.db"
    env = {"INFERSIGHT_CONFIG": str(config), "INFERSIGHT_STORE__URL": f"sqlite:///{store}"}
    ids = [f"p-{index:03d}-{uuid.uuid4().hex[:6]}" for index in range(60)]
    kept = {request_id for request_id in ids if sampled_in(IRIS, request_id, 0.5)}
    assert 15 < len(kept) < 45
    with (
        run_ingest(kafka_bootstrap, topic, tmp_path, **env) as ingest,
        run_worker(
            kafka_bootstrap,
            topic,
            tmp_path,
            **env,
            INFERSIGHT_WORKER__EXTRA_TOPICS=json.dumps([direct]),
            INFERSIGHT_WORKER__GROUP_ID=f"test-{uuid.uuid4().hex[:6]}",
            INFERSIGHT_WORKER__BATCH_SECONDS="0.2",
        ),
        httpx.Client(base_url=ingest.url, timeout=30) as client,
    ):
        for request_id in ids:
            for kind, body in (("request", APPLICANT), ("response", {"predictions": [1]})):
                answer = client.post("/", headers=kserve_headers(request_id, kind), content=json.dumps(body))
                assert answer.status_code == 202 and answer.json() == {"accepted": 1}
        # A KafkaSink writes straight to Kafka: the worker applies the same rules.
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        direct_ids = [f"d-{index:03d}-{uuid.uuid4().hex[:6]}" for index in range(20)]
        for request_id in direct_ids:
            for kind, body in (("request", APPLICANT), ("response", {"predictions": [1]})):
                headers = {
                    "ce_" + name[3:].lower(): value
                    for name, value in kserve_headers(request_id, kind).items()
                    if name.startswith("Ce-")
                }
                producer.send(
                    direct,
                    key=b"models/iris",
                    value=json.dumps(body).encode(),
                    headers=[("content-type", b"application/json")]
                    + [(name, value.encode()) for name, value in headers.items()],
                )
        producer.flush()
        producer.close()
        kept |= {request_id for request_id in direct_ids if sampled_in(IRIS, request_id, 0.5)}

        store_url = f"sqlite:///{store}"
        wait_until(lambda: set(stored_inferences(store_url)) >= kept, 90, "the sampled inferences stored")
        assert set(stored_inferences(store_url)) == kept
        with sqlite3.connect(store) as db:
            everything = "\n".join(str(row) for row in db.execute("select * from inferences"))
        assert "ada@example.com" not in everything and "X-Request-Id" not in everything
        assert REDACTED in everything and '"age": 41' in everything.replace('"age":41', '"age": 41')
        # The payloads topic holds what the ingest kept, and the KafkaSink's events the worker
        # kept, sampled and redacted before it wrote them there under the model's key.
        in_kafka = read_topic(kafka_bootstrap, topic)
        assert len(in_kafka) == 2 * len(kept)
        assert not any(b"ada@example.com" in record.value for record in in_kafka)  # type: ignore[attr-defined]
        metrics = httpx.get(f"{ingest.url}/metrics").text
        dropped = 2 * (len(ids) - len([i for i in ids if sampled_in(IRIS, i, 0.5)]))
        assert (
            'infersight_sampled_out_total{component="predictor",endpoint="canary",inferenceservice="iris",'
            f'namespace="models",revision="canary"}} '
            f"{float(dropped)}"
        ) in metrics
