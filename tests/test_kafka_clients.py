"""The broker we run speaks to both clients: the package's (librdkafka) and the tests' (kafka-python)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from kafka import KafkaConsumer, KafkaProducer

from infersight.config import KafkaConfig
from infersight.kafkaclient import (
    KafkaUnreachable,
    ensure_topics,
    librdkafka_config,
    partition_counts,
    wait_for_kafka,
)
from infersight.localkafka.classpath import kafka_version
from tests.helpers import free_port


def test_topics_created_once_with_partitions(kafka_bootstrap: str) -> None:
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=4, max_message_bytes=2_000_000)
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(config, [name]) == [name]
    assert ensure_topics(config, [name]) == []
    assert partition_counts(config, [name, f"{name}.absent"]) == {name: 4}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(name, timeout=30).topics[name].partitions) == 4
    resource = ConfigResource(ResourceType.TOPIC, name)
    (described,) = admin.describe_configs([resource]).values()
    assert described.result(timeout=30)["max.message.bytes"].value == "2000000"


def test_wait_for_kafka(kafka_bootstrap: str) -> None:
    waits: list[float] = []
    wait_for_kafka(KafkaConfig(bootstrap_servers=kafka_bootstrap), on_wait=lambda: waits.append(1))
    assert waits == []


def test_no_broker_is_unreachable_after_the_startup_timeout() -> None:
    """Nothing listens on the port: each call retries until ``startup_timeout_seconds``, then says so."""
    config = KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", startup_timeout_seconds=7)
    waits: list[float] = []
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable, match=r"did not answer within 7s"):
        wait_for_kafka(config, on_wait=lambda: waits.append(time.monotonic()))
    assert waits and 7 <= time.monotonic() - started < 12
    config = config.model_copy(update={"startup_timeout_seconds": 2})
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable, match=r"did not answer within 2s"):
        ensure_topics(config, ["test.unreachable"])
    assert 2 <= time.monotonic() - started < 7
    with pytest.raises(KafkaUnreachable, match="did not answer"):
        partition_counts(config, ["test.unreachable"])


def test_librdkafka_and_kafka_python_interoperate(kafka_bootstrap: str) -> None:
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=1)
    topic = f"test.clients.{uuid.uuid4().hex[:8]}"
    ensure_topics(config, [topic])

    delivered: list[object] = []
    producer = Producer({**librdkafka_config(config), "acks": "all", "enable.idempotence": True})
    producer.produce(
        topic,
        b"from librdkafka",
        key=b"k",
        headers=[("ce_id", b"1")],
        on_delivery=lambda err, _: delivered.append(err),
    )
    assert producer.flush(30) == 0
    assert delivered == [None]

    other = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    other.send(topic, b"from kafka-python", key=b"k", headers=[("ce_id", b"2")]).get(timeout=30)
    other.close()

    consumer = Consumer(
        {
            **librdkafka_config(config),
            "group.id": f"test-clients-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        seen: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                assert message.error() is None, message.error()
                seen.append((message.value(), dict(message.headers())["ce_id"]))
    finally:
        consumer.close()
    assert sorted(seen) == [(b"from kafka-python", b"2"), (b"from librdkafka", b"1")]

    reader = KafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    try:
        values = sorted(record.value for record in reader)
    finally:
        reader.close()
    assert values == [b"from kafka-python", b"from librdkafka"]
    assert kafka_version().startswith("4.")
