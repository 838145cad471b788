"""Kafka client settings and topic creation, shared by every process that talks to Kafka."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from infersight.config import KafkaConfig

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


class KafkaUnreachable(Exception):
    """No broker answered within the configured time."""


class KafkaAuthenticationFailed(KafkaUnreachable):
    """The broker answered but refused our credentials (SASL) or TLS handshake: retrying will not help."""


def _sasl(config: KafkaConfig) -> tuple[str, str | None, str | None] | None:
    """Mechanism, user name and password when the protocol is SASL_*, else None.

    The mechanism is PLAIN unless set, for every client alike (librdkafka's own default is GSSAPI).
    """
    if config.security_protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return None
    password = config.sasl_password.get_secret_value() if config.sasl_password else None
    return config.sasl_mechanism or "PLAIN", config.sasl_username, password


def ssl_context(config: KafkaConfig) -> ssl.SSLContext | None:
    """The TLS context of the asyncio clients (aiokafka under Faust) for SSL and SASL_SSL, else None.

    It trusts ``ssl_cafile`` (the system's CAs when unset), checks the broker's host name and
    presents ``ssl_certfile``/``ssl_keyfile`` as the client certificate when given.
    """
    if config.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(config.ssl_cafile) if config.ssl_cafile else None
    )
    if config.ssl_certfile is not None:
        context.load_cert_chain(
            str(config.ssl_certfile), keyfile=str(config.ssl_keyfile) if config.ssl_keyfile else None
        )
    return context


def faust_credentials(config: KafkaConfig) -> CredentialsT | None:
    """``broker_credentials`` of the Faust app: the same protocol, SASL login and TLS as the other clients.

    Faust derives the protocol from the object: ``SASLCredentials`` means SASL_SSL when it holds an
    SSL context and SASL_PLAINTEXT when not, ``SSLCredentials`` means SSL, and None PLAINTEXT.
    """
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(config)
    sasl = _sasl(config)
    if sasl is not None:
        mechanism, username, password = sasl
        return SASLCredentials(username=username, password=password, mechanism=mechanism, ssl_context=context)
    if context is not None:
        return SSLCredentials(context)
    return None


def _security_options(config: KafkaConfig) -> dict[str, Any]:
    options: dict[str, Any] = {"security_protocol": config.security_protocol}
    if sasl := _sasl(config):
        options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"] = sasl
    return options


def librdkafka_config(config: KafkaConfig) -> dict[str, Any]:
    """Configuration for confluent-kafka (librdkafka) clients."""
    options: dict[str, Any] = {
        "bootstrap.servers": config.bootstrap_servers,
        "client.id": config.client_id,
        "security.protocol": config.security_protocol.lower(),
    }
    if sasl := _sasl(config):
        options["sasl.mechanism"], options["sasl.username"], options["sasl.password"] = sasl
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


def refusal(config: KafkaConfig, timeout_seconds: float = 5.0) -> str | None:
    """Why the broker turns us away (failed SASL login, unverifiable TLS certificate), else None.

    None also when no broker answers at all: that is for the caller's retries. kafka-python only
    logs such a refusal and retries until its bootstrap times out, so librdkafka, which reports
    it on its error callback, asks; only secured configurations are asked (PLAINTEXT has no login).
    """
    if config.security_protocol == "PLAINTEXT":
        return None
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    refusals: list[str] = []
    unreachable: list[str] = []

    def on_error(error: KafkaError) -> None:
        text = error.str()
        # A handshake cut short (a broker restarting) also "fails"; a refused certificate does not pass.
        if error.code() == KafkaError._AUTHENTICATION or (
            "SSL handshake failed" in text and "certificate" in text
        ):
            refusals.append(text)
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            unreachable.append(text)

    # log_level 0: the reasons come back through on_error; do not print them on stderr as well.
    options: dict[str, Any] = {**librdkafka_config(config), "error_cb": on_error, "log_level": 0}
    admin = AdminClient(options)
    deadline = time.monotonic() + timeout_seconds
    while not refusals and not unreachable and time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=0.5)
            return None
        except KafkaException:
            admin.poll(0)  # serves on_error
    return refusals[0] if refusals else None


def _refuse_if_refused(config: KafkaConfig) -> None:
    if reason := refusal(config):
        raise KafkaAuthenticationFailed(
            f"Kafka at {config.bootstrap_servers} refused the connection "
            f"({config.security_protocol}, check the sasl_* and ssl_* settings): {reason}"
        )


def infersight_topics(config: KafkaConfig) -> list[str]:
    """The topics every infersight process relies on."""
    return [config.topics.payloads, config.topics.detections, config.topics.deadletter]


def ensure_topics(config: KafkaConfig, names: Iterable[str]) -> list[str]:
    """Create the topics that are missing; return the names created.

    Retries until ``kafka.startup_timeout_seconds`` so that a process started beside its
    broker (compose, Kubernetes) waits for it instead of failing at once. A broker that refuses
    the credentials or the TLS handshake fails at once with :class:`KafkaAuthenticationFailed`.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    wanted = list(dict.fromkeys(names))
    deadline = time.monotonic() + config.startup_timeout_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        _refuse_if_refused(config)
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

    _refuse_if_refused(config)
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
