"""Kafka client settings and topic creation, shared by every process that talks to Kafka."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from infersight.config import KafkaConfig


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


def refusal(config: KafkaConfig, timeout_seconds: float = 5.0) -> str | None:
    """Why the broker turns us away (failed SASL login, unverifiable TLS certificate), else None.

    None also when no broker answers at all: that is for the caller's retries. A refused login
    only shows on librdkafka's error callback (a metadata request merely times out), so a client
    of its own with such a callback asks; only secured configurations are asked (PLAINTEXT has no
    login).
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


#: Longest wait for one metadata answer; a broker that answers at all answers well within it.
_ATTEMPT_SECONDS = 5.0
#: Least time between two attempts while no broker answers.
_RETRY_SECONDS = 1.0


def _quiet_admin(config: KafkaConfig) -> Any:
    """An admin client that reports failures only through its calls' exceptions.

    While no broker answers, librdkafka logs every failed connection on stderr and calls the error
    callback; log level 0 and an error callback that drops everything keep it quiet: the callers
    say what matters, and :func:`refusal` tells a refused login apart.
    """
    from confluent_kafka.admin import AdminClient

    return AdminClient({**librdkafka_config(config), "log_level": 0, "error_cb": lambda _error: None})


def _unreachable(config: KafkaConfig, error: Exception | None) -> KafkaUnreachable:
    return KafkaUnreachable(
        f"Kafka at {config.bootstrap_servers} did not answer within {config.startup_timeout_seconds:.0f}s"
        + (f": {error}" if error else "")
    )


def _retry(
    config: KafkaConfig,
    attempt: Callable[[Any, float], list[str] | None],
    on_wait: Callable[[], None] | None = None,
) -> list[str]:
    """Call ``attempt(admin, timeout)`` until it returns names, or ``startup_timeout_seconds`` pass.

    ``attempt`` raises ``KafkaException`` when the broker did not answer (or failed the request),
    and returns None to be called again soon. A refused login fails at once; ``on_wait`` is
    called before each wait for a broker to answer.
    """
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + config.startup_timeout_seconds
    admin = _quiet_admin(config)
    last_error: Exception | None = None
    answered = False
    while True:
        if not answered:
            _refuse_if_refused(config)
        started = time.monotonic()
        try:
            answer = attempt(admin, max(0.1, min(_ATTEMPT_SECONDS, deadline - started)))
        except KafkaException as exc:
            last_error, answered = exc, False
        else:
            if answer is not None:
                return answer
            answered = True
        now = time.monotonic()
        if now >= deadline:
            raise _unreachable(config, last_error)
        if answered:
            time.sleep(min(0.1, deadline - now))
            continue
        if on_wait is not None:
            on_wait()
        time.sleep(min(max(0.0, _RETRY_SECONDS - (now - started)), deadline - now))


def wait_for_kafka(config: KafkaConfig, on_wait: Callable[[], None] | None = None) -> None:
    """Block until a broker answers a metadata request.

    Retries until ``kafka.startup_timeout_seconds``, calling ``on_wait`` (if given) each time it
    waits for the next try, then raises :class:`KafkaUnreachable`. A broker that refuses the
    credentials or the TLS handshake fails at once with :class:`KafkaAuthenticationFailed`.
    """

    def attempt(admin: Any, timeout: float) -> list[str]:
        admin.list_topics(timeout=timeout)
        return []

    _retry(config, attempt, on_wait)


def ensure_topics(config: KafkaConfig, names: Iterable[str]) -> list[str]:
    """Create the topics that are missing; return the names created.

    Retries until ``kafka.startup_timeout_seconds`` so that a process started beside its
    broker (compose, Kubernetes) waits for it instead of failing at once. A broker that refuses
    the credentials or the TLS handshake fails at once with :class:`KafkaAuthenticationFailed`.
    It returns once the broker's metadata lists every topic it created.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewTopic

    wanted = list(dict.fromkeys(names))
    created: list[str] = []
    settled: set[str] = set()  # created, or found created by someone else

    def attempt(admin: Any, timeout: float) -> list[str] | None:
        existing = admin.list_topics(timeout=timeout).topics
        missing = [name for name in wanted if name not in existing and name not in settled]
        if not missing:
            # Done once the broker's metadata lists them all; until then, look again.
            return sorted(created, key=wanted.index) if all(name in existing for name in wanted) else None
        topics = [
            NewTopic(
                name,
                num_partitions=config.partitions,
                replication_factor=config.replication_factor,
                config={"max.message.bytes": str(config.max_message_bytes)},
            )
            for name in missing
        ]
        futures = admin.create_topics(topics, operation_timeout=timeout, request_timeout=timeout)
        failure: KafkaException | None = None
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
                settled.add(name)
            except KafkaException as exc:
                if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    settled.add(name)
                else:
                    failure = exc
        if failure is not None:
            raise failure
        return None

    return _retry(config, attempt)


def partition_counts(config: KafkaConfig, names: Iterable[str]) -> dict[str, int]:
    """How many partitions each existing topic has (missing topics are left out)."""
    from confluent_kafka import KafkaException

    _refuse_if_refused(config)
    try:
        topics = _quiet_admin(config).list_topics(timeout=10.0).topics
    except KafkaException as exc:
        raise KafkaUnreachable(f"Kafka at {config.bootstrap_servers} did not answer: {exc}") from exc
    return {name: len(topics[name].partitions) for name in names if name in topics}


def assign_whole_topic(consumer: Any, topic: str, *, at_end: bool, timeout_seconds: float = 5.0) -> bool:
    """Assign every partition of ``topic`` to ``consumer`` (no group joined), from its end or start.

    The end is resolved now, so that what is produced after the call is read and nothing before
    it. False when the topic does not exist yet or the broker does not answer in time.
    """
    from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

    try:
        found = consumer.list_topics(topic, timeout=timeout_seconds).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return False
        assigned = [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in found.partitions]
        if at_end:
            for partition in assigned:
                _, partition.offset = consumer.get_watermark_offsets(partition, timeout=timeout_seconds)
    except KafkaException:
        return False
    consumer.incremental_assign(assigned)
    return True
