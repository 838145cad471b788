"""One real Kafka broker for the whole test session.

``KAFKA_BOOTSTRAP_SERVERS`` names an existing broker; otherwise, where a Docker engine answers,
testcontainers starts one; otherwise the project's own local Kafka (KRaft, Maven Central jars)
runs in a temporary folder on free ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infersight.config import LocalKafkaConfig
from infersight.localkafka import LocalKafka
from tests.helpers import Ingest, free_port, run_ingest

# Every ingest of the session, in this process or started from it, spools in a folder of the
# session's unless its test names one: never in the user's state folder, never another run's.
os.environ.setdefault("INFERSIGHT_INGEST__SPOOL__PATH", tempfile.mkdtemp(prefix="infersight-spool-"))
# A test's ingest stops at once on SIGTERM; the restart test sets the drain it measures.
os.environ.setdefault("INFERSIGHT_INGEST__DRAIN_SECONDS", "0")


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=10).returncode == 0


def local_kafka(state_dir: Path) -> LocalKafka:
    """A local broker on free ports, its state in ``state_dir``."""
    return LocalKafka(LocalKafkaConfig(state_dir=state_dir, port=free_port(), controller_port=free_port()))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        broker = local_kafka(tmp_path_factory.mktemp("kafka"))
        broker.start()
        try:
            yield broker.bootstrap_servers
        finally:
            broker.stop()


@pytest.fixture(scope="session")
def ingest(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    """The ingest as a user runs it, with a small body limit so that 413 is cheap to provoke."""
    topic = f"test.payloads.{uuid.uuid4().hex[:8]}"
    with run_ingest(
        kafka_bootstrap, topic, tmp_path_factory.mktemp("ingest"), INFERSIGHT_INGEST__MAX_BODY_BYTES="65536"
    ) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL: ``$INFERSIGHT_TEST_POSTGRES_URL``, else a throwaway server from the apt binaries."""
    if url := os.environ.get("INFERSIGHT_TEST_POSTGRES_URL"):
        yield url
        return
    from tests.postgres import local_postgres

    with local_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for one test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    from tests.postgres import create_database

    server = request.getfixturevalue("postgres_server")
    return create_database(server, f"test_{uuid.uuid4().hex[:12]}")
