"""Every Kafka client of infersight through SASL_SSL, against a second real broker.

The broker (KRaft, the project's jars) gets a SASL_SSL listener with a certificate from a CA made
here and users for SASL/PLAIN and SCRAM; its PLAINTEXT listener only serves the readiness probe
and the SCRAM user set-up, and nothing under test is told about it. Every client is librdkafka's
(confluent-kafka), configured by ``librdkafka_config``: the ingest (admin creating the topics,
producer) and the worker (admin, consumer, producer) are pointed at the secured listener through
``INFERSIGHT_KAFKA__*`` alone, and a KServe pair posted over HTTP must end up in the store. A
wrong password or CA must fail fast and say so.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from infersight.config import KafkaConfig, LocalKafkaConfig
from infersight.kafkaclient import (
    KafkaAuthenticationFailed,
    ensure_topics,
    librdkafka_config,
    partition_counts,
    wait_for_kafka,
)
from infersight.localkafka import Listener, LocalKafka
from tests.certs import make_certificates
from tests.helpers import free_port, kafka_environment, run_ingest, run_worker
from tests.test_ingest import KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE, kserve_headers

pytestmark = pytest.mark.slow

PLAIN_USER, PLAIN_PASSWORD = "ingest", "ingest-secret"
SCRAM_USER, SCRAM_PASSWORD = "worker", "worker-secret"
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SecuredKafka:
    bootstrap: str  # the SASL_SSL listener
    plaintext: str  # readiness and set-up only
    cafile: Path

    def config(self, mechanism: str, password: str | None = None, **extra: object) -> KafkaConfig:
        user, secret = (PLAIN_USER, PLAIN_PASSWORD) if mechanism == "PLAIN" else (SCRAM_USER, SCRAM_PASSWORD)
        return KafkaConfig.model_validate(
            {
                "bootstrap_servers": self.bootstrap,
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": mechanism,
                "sasl_username": user,
                "sasl_password": password or secret,
                "ssl_cafile": self.cafile,
                **extra,
            }
        )

    def env(self, mechanism: str, password: str | None = None) -> dict[str, str]:
        """The ``INFERSIGHT_KAFKA__*`` settings of a process on the secured listener."""
        config = self.config(mechanism, password)
        assert config.sasl_password is not None
        return {
            "INFERSIGHT_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "INFERSIGHT_KAFKA__SASL_MECHANISM": mechanism,
            "INFERSIGHT_KAFKA__SASL_USERNAME": str(config.sasl_username),
            "INFERSIGHT_KAFKA__SASL_PASSWORD": config.sasl_password.get_secret_value(),
            "INFERSIGHT_KAFKA__SSL_CAFILE": str(self.cafile),
        }


def add_scram_users(plaintext: str) -> None:
    """The SCRAM user, both hash sizes, through the PLAINTEXT listener (KRaft keeps them in its metadata)."""
    admin = AdminClient({"bootstrap.servers": plaintext})
    # One mechanism per request: the broker refuses to alter a user twice in one.
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        upsert = UserScramCredentialUpsertion(
            SCRAM_USER, ScramCredentialInfo(mechanism, 4096), SCRAM_PASSWORD.encode()
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=30)


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    folder = tmp_path_factory.mktemp("secured-kafka")
    config = LocalKafkaConfig(state_dir=folder / "state", port=free_port(), controller_port=free_port())
    cafile, keystore = make_certificates(folder, config.host)
    port = free_port()
    prefix = "listener.name.sasl_ssl."
    broker = LocalKafka(
        config,
        listeners=[Listener("SASL_SSL", "SASL_SSL", port)],
        properties={
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(cafile),
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            f"{prefix}plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{PLAIN_USER}="{PLAIN_PASSWORD}";'
            ),
            f"{prefix}scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            f"{prefix}scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
        },
    )
    broker.start()
    try:
        add_scram_users(broker.bootstrap_servers)
        yield SecuredKafka(f"{config.host}:{port}", broker.bootstrap_servers, cafile)
    finally:
        broker.stop()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_client_logs_in(secured_kafka: SecuredKafka, mechanism: str) -> None:
    """The admin (topics), the producer and a consumer, each from ``librdkafka_config`` alone."""
    config = secured_kafka.config(mechanism, partitions=2)
    options = librdkafka_config(config)
    assert options["security.protocol"] == "sasl_ssl" and options["sasl.mechanism"] == mechanism
    topic = f"test.secured.{uuid.uuid4().hex[:8]}"
    wait_for_kafka(config)
    assert ensure_topics(config, [topic]) == [topic]
    assert partition_counts(config, [topic]) == {topic: 2}

    delivered: list[object] = []
    producer = Producer(options)
    producer.produce(
        topic, b"over " + mechanism.encode(), key=b"k", on_delivery=lambda err, _: delivered.append(err)
    )
    assert producer.flush(30) == 0
    assert delivered == [None]

    consumer = Consumer(
        {**options, "group.id": f"test-secured-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 20
        while not values and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                assert message.error() is None, message.error()
                values.append(message.value())
    finally:
        consumer.close()
    assert values == [b"over " + mechanism.encode()]


def test_ingest_and_worker_store_a_pair_over_sasl_ssl(
    secured_kafka: SecuredKafka, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The ingest logs in with PLAIN, the worker with SCRAM-SHA-512; only their settings say how."""
    logs = tmp_path_factory.mktemp("secured-pipeline")
    store = logs / "store.db"
    topic = f"test.secured.{uuid.uuid4().hex[:8]}"
    worker_env = {
        **secured_kafka.env("SCRAM-SHA-512"),
        "INFERSIGHT_STORE__URL": f"sqlite:///{store}",
        "INFERSIGHT_WORKER__GROUP_ID": f"test-secured-{uuid.uuid4().hex[:6]}",
        "INFERSIGHT_WORKER__BATCH_SECONDS": "0.2",
    }
    with (
        run_ingest(secured_kafka.bootstrap, topic, logs, **secured_kafka.env("PLAIN")) as ingest,
        run_worker(secured_kafka.bootstrap, topic, logs, **worker_env) as worker,
    ):
        request_id = str(uuid.uuid4())
        for kind, body in (("request", KSERVE_V1_REQUEST), ("response", KSERVE_V1_RESPONSE)):
            answer = httpx.post(
                ingest.url, headers=kserve_headers(request_id, kind), content=body, timeout=30
            )
            assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 60
        rows: list[tuple[object, ...]] = []
        while not rows and time.monotonic() < deadline:
            assert worker.process.poll() is None, worker.log.read_text()
            time.sleep(0.5)
            rows = _rows(
                store, "select request_body, response_body from inferences where request_id = ?", request_id
            )
        assert rows == [(KSERVE_V1_REQUEST, KSERVE_V1_RESPONSE)], worker.log.read_text()


def _rows(path: Path, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        try:
            return connection.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError:  # the worker has not created the tables yet
            return []


def test_refused_logins_fail_fast_and_say_why(
    secured_kafka: SecuredKafka, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No minute-long wait for a broker that did answer: a wrong password or CA is named at once."""
    topic = f"test.secured.{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationFailed, match="Authentication failed"):
        ensure_topics(secured_kafka.config("SCRAM-SHA-256", "not-the-password"), [topic])
    with pytest.raises(KafkaAuthenticationFailed, match="certificate verify failed"):
        ensure_topics(secured_kafka.config("PLAIN", ssl_cafile=None), [topic])  # the system's CAs
    with pytest.raises(KafkaAuthenticationFailed, match="Authentication failed"):
        partition_counts(secured_kafka.config("PLAIN", "not-the-password"), [topic])
    with pytest.raises(KafkaAuthenticationFailed, match="Authentication failed"):
        wait_for_kafka(secured_kafka.config("SCRAM-SHA-512", "not-the-password"))
    assert time.monotonic() - started < 15

    logs = tmp_path_factory.mktemp("secured-refused")
    env = kafka_environment(
        secured_kafka.bootstrap,
        topic,
        **secured_kafka.env("PLAIN", "not-the-password"),
        INFERSIGHT_WORKER__STATE_DIR=str(logs / "worker-state"),
        INFERSIGHT_STORE__URL=f"sqlite:///{logs / 'store.db'}",
        INFERSIGHT_WORKER__METRICS_PORT="0",
    )
    port = free_port()
    started = time.monotonic()
    # The worker creates its topics first, and stops; the ingest does the same when it creates them
    # (the same call), and when it does not, it serves from its spool: its producer is never ready.
    worker, ingest = (
        subprocess.Popen(
            [sys.executable, "-m", "infersight", *command],
            env={**env, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for command, extra in (
            (["worker"], {}),
            (
                ["ingest", "--host", "127.0.0.1", "--port", str(port)],
                {"INFERSIGHT_KAFKA__CREATE_TOPICS": "false"},
            ),
        )
    )
    try:
        output, _ = worker.communicate(timeout=60)
        said = " ".join(output.decode(errors="replace").split())  # rich wraps long lines
        assert worker.returncode == 1, said
        assert "refused the connection" in said and "Authentication failed" in said, said
        assert "not-the-password" not in said
        assert time.monotonic() - started < 30
        readiness = None
        while readiness is None and time.monotonic() - started < 60:
            assert ingest.poll() is None
            with contextlib.suppress(httpx.HTTPError):
                readiness = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            time.sleep(0.2)
        assert readiness is not None and readiness.status_code == 200
        assert readiness.json()["status"] == "degraded"  # events wait on disk until the login works
    finally:
        ingest.terminate()
    output, _ = ingest.communicate(timeout=30)
    assert "SASL authentication error" in output.decode(errors="replace")
