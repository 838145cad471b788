"""The broker version we run speaks to both Python clients the project uses."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from infersight.config import KafkaConfig
from infersight.kafkaclient import ensure_topics
from infersight.localkafka.classpath import kafka_version


def test_topics_created_once_with_partitions(kafka_bootstrap: str) -> None:
    config = KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=4)
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    assert ensure_topics(config, [name]) == [name]
    assert ensure_topics(config, [name]) == []
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        (described,) = admin.describe_topics([name])
        assert len(described["partitions"]) == 4
    finally:
        admin.close()


def test_aiokafka_and_kafka_python_interoperate(kafka_bootstrap: str) -> None:
    topic = f"test.clients.{uuid.uuid4().hex[:8]}"
    ensure_topics(KafkaConfig(bootstrap_servers=kafka_bootstrap, partitions=1), [topic])

    async def aiokafka_round() -> list[tuple[bytes, bytes]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"from aiokafka", key=b"k", headers=[("ce_id", b"1")])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            seen: list[tuple[bytes, bytes]] = []
            while len(seen) < 2:
                for records in (await consumer.getmany(timeout_ms=10_000)).values():
                    seen.extend((record.value, dict(record.headers)["ce_id"]) for record in records)
            return seen
        finally:
            await consumer.stop()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    producer.send(topic, b"from kafka-python", key=b"k", headers=[("ce_id", b"2")]).get(timeout=30)
    producer.close()

    assert sorted(asyncio.run(aiokafka_round())) == [(b"from aiokafka", b"1"), (b"from kafka-python", b"2")]

    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    try:
        values = sorted(record.value for record in consumer)
    finally:
        consumer.close()
    assert values == [b"from aiokafka", b"from kafka-python"]
    assert kafka_version().startswith("4.")
