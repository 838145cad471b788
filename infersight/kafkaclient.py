"""Kafka client settings and topic creation, shared by every process that talks to Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from infersight.config import KafkaConfig


class KafkaUnreachable(Exception):
    """No broker answered within the configured time."""


def _security_options(config: KafkaConfig) -> dict[str, Any]:
    options: dict[str, Any] = {"security_protocol": config.security_protocol}
    if config.sasl_mechanism:
        options["sasl_mechanism"] = config.sasl_mechanism
        options["sasl_plain_username"] = config.sasl_username
        options["sasl_plain_password"] = (
            config.sasl_password.get_secret_value() if config.sasl_password else None
        )
    return options


def librdkafka_config(config: KafkaConfig) -> dict[str, Any]:
    """Configuration for confluent-kafka (librdkafka) clients."""
    options: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "client.id": config.client_id,
        "security.protocol": config.security_protocol.lower(),
    }
    if config.sasl_mechanism:
        options["sasl.mechanism"] = config.sasl_mechanism
        options["sasl.username"] = config.sasl_username
        options["sasl.password"] = config.sasl_password.get_secret_value() if config.sasl_password else None
    for name, key in (
        ("ssl_cafile", "ssl.ca.location"),
        ("ssl_certfile", "ssl.certificate.location"),
        ("ssl_keyfile", "ssl.key.location"),
    ):
        value = getattr(config, name)
        if value is not None:
            options[key] = str(value)
    return options


def kafka_python_options(config: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments for kafka-python clients (the admin client)."""
    options = {"bootstrap_servers": config.bootstrap_servers, "client_id": config.client_id}
    options.update(_security_options(config))
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(config, name)
        if value is not None:
            options[name] = str(value)
    return options


def infersight_topics(config: KafkaConfig) -> list[str]:
    """The topics every infersight process relies on."""
    return [config.topics.payloads, config.topics.detections, config.topics.deadletter]


def ensure_topics(config: KafkaConfig, names: Iterable[str]) -> list[str]:
    """Create the topics that are missing; return the names created.

    Retries until ``kafka.startup_timeout_seconds`` so that a process started beside its
    broker (compose, Kubernetes) waits for it instead of failing at once.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    wanted = list(dict.fromkeys(names))
    deadline = time.monotonic() + config.startup_timeout_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            admin = KafkaAdminClient(request_timeout_ms=5000, **kafka_python_options(config))
        except (KafkaError, OSError) as exc:
            last_error = exc
            time.sleep(1.0)
            continue
        try:
            missing = [name for name in wanted if name not in set(admin.list_topics())]
            created = []
            for name in missing:
                topic = NewTopic(
                    name=name,
                    num_partitions=config.partitions,
                    replication_factor=config.replication_factor,
                    topic_configs={"max.message.bytes": str(config.max_message_bytes)},
                )
                try:
                    admin.create_topics([topic])
                    created.append(name)
                except TopicAlreadyExistsError:
                    pass
            return created
        except KafkaError as exc:
            last_error = exc
            time.sleep(1.0)
        finally:
            admin.close()
    raise KafkaUnreachable(
        f"Kafka at {config.bootstrap_servers} did not answer within {config.startup_timeout_seconds:.0f}s"
        + (f": {last_error}" if last_error else "")
    )


def partition_counts(config: KafkaConfig, names: Iterable[str]) -> dict[str, int]:
    """How many partitions each existing topic has (missing topics are left out)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(request_timeout_ms=10_000, **kafka_python_options(config))
    try:
        existing = set(admin.list_topics())
        wanted = [name for name in names if name in existing]
        return (
            {topic["name"]: len(topic["partitions"]) for topic in admin.describe_topics(wanted)}
            if wanted
            else {}
        )
    finally:
        admin.close()
