"""Start, stop and inspect the local broker: one ``java`` process with its state in one folder.

The folder holds ``server.properties``, the KRaft metadata and data logs (``data/``), the
broker's output (``kafka.log``) and a pid file. Storage is formatted on the first start only,
so topics and offsets survive a restart.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infersight.config import LocalKafkaConfig
from infersight.localkafka.classpath import ClasspathError, kafka_version, resolve_classpath


class LocalKafkaError(Exception):
    """The local broker could not be started, stopped or reached."""


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    pid: int | None
    bootstrap_servers: str
    state_dir: Path
    version: str


@dataclass(frozen=True)
class Listener:
    """One more listener of the local broker, e.g. ``Listener("SASL_SSL", "SASL_SSL", 9094)``.

    Its settings (keystore, SASL mechanisms, JAAS) go in ``LocalKafka(properties=...)``, under
    ``listener.name.<name in lower case>.`` where they concern this listener only.
    """

    name: str
    protocol: str
    port: int


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def broker_answers(
    bootstrap_servers: str, timeout_seconds: float = 3.0, client_options: Mapping[str, Any] | None = None
) -> bool:
    """True when a Kafka client gets cluster metadata naming at least one broker.

    ``client_options`` are librdkafka settings (:func:`infersight.kafkaclient.librdkafka_config`),
    such as the security ones of a secured cluster.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    options = {
        **(client_options or {}),
        "bootstrap.servers": bootstrap_servers,
        "client.id": "infersight-probe",
        # A broker that is not (yet) there is an answer here, not something to print on stderr.
        "log_level": 0,
        "error_cb": lambda _error: None,
    }
    try:
        return bool(AdminClient(options).list_topics(timeout=timeout_seconds).brokers)
    except (KafkaException, ValueError):
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is one.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


class LocalKafka:
    """A single-node Apache Kafka in KRaft mode (combined broker and controller)."""

    def __init__(
        self,
        config: LocalKafkaConfig,
        *,
        listeners: Sequence[Listener] = (),
        properties: Mapping[str, str] | None = None,
    ) -> None:
        """``listeners`` are served beside the PLAINTEXT one (which readiness probes keep using);
        ``properties`` are added to, or replace, the generated ``server.properties`` entries."""
        self.config = config
        self.state_dir = config.state_dir.expanduser()
        self.listeners = tuple(listeners)
        self.properties = dict(properties or {})

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "kafka.log"

    def _pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _process_alive(pid) else None

    def status(self) -> KafkaStatus:
        pid = self._pid()
        return KafkaStatus(
            running=pid is not None and broker_answers(self.bootstrap_servers),
            pid=pid,
            bootstrap_servers=self.bootstrap_servers,
            state_dir=self.state_dir,
            version=kafka_version(),
        )

    def _write_properties(self) -> Path:
        cfg = self.config
        data_dir = self.state_dir / "data"
        extra = [f"{listener.name}://{cfg.host}:{listener.port}" for listener in self.listeners]
        protocols = [f"{listener.name}:{listener.protocol}" for listener in self.listeners]
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{cfg.host}:{cfg.controller_port}",
            "listeners": ",".join(
                [
                    f"PLAINTEXT://{cfg.host}:{cfg.port}",
                    f"CONTROLLER://{cfg.host}:{cfg.controller_port}",
                    *extra,
                ]
            ),
            "advertised.listeners": ",".join([f"PLAINTEXT://{cfg.host}:{cfg.port}", *extra]),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                ["CONTROLLER:PLAINTEXT", "PLAINTEXT:PLAINTEXT", *protocols]
            ),
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # A lone broker has no one to wait for: let the first consumer group form at once.
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
            **self.properties,
        }
        path = self.state_dir / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()), encoding="utf-8")
        return path

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                "Java 17 or newer is needed to run the local Kafka (apt install openjdk-17-jre-headless)"
            )
        return java

    def _format_storage(self, java: str, classpath: str, properties: Path) -> None:
        if (self.state_dir / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                # One argument, so that an id starting with "-" (1 in 64) is not read as an option.
                f"--cluster-id={cluster_id}",
                "-c",
                str(properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage failed: {(result.stderr or result.stdout).strip()}"
            )

    def start(self) -> KafkaStatus:
        """Start the broker unless it already runs; return once it answers clients."""
        current = self.status()
        if current.running:
            return current
        if current.pid is None and _port_open(self.config.host, self.config.port):
            raise LocalKafkaError(
                f"port {self.config.port} is taken by another process; "
                "stop it or set local_kafka.port (INFERSIGHT_LOCAL_KAFKA__PORT)"
            )
        if current.pid is None:
            java = self._java()
            try:
                classpath = resolve_classpath(self.config.maven_repo.expanduser())
            except ClasspathError as exc:
                raise LocalKafkaError(str(exc)) from exc
            self.state_dir.mkdir(parents=True, exist_ok=True)
            properties = self._write_properties()
            self._format_storage(java, classpath, properties)
            self._launch(java, classpath, properties)
        return self._wait_until_ready()

    def _launch(self, java: str, classpath: str, properties: Path) -> None:
        heap = self.config.heap
        command = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ]
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._pid_file.write_text(str(process.pid))

    def _wait_until_ready(self) -> KafkaStatus:
        deadline = time.monotonic() + self.config.start_timeout_seconds
        while time.monotonic() < deadline:
            pid = self._pid()
            if pid is None:
                raise LocalKafkaError(f"Kafka exited during start; see {self.log_file}")
            if _port_open(self.config.host, self.config.port) and broker_answers(self.bootstrap_servers):
                return self.status()
            time.sleep(0.5)
        raise LocalKafkaError(
            f"Kafka did not answer on {self.bootstrap_servers} within "
            f"{self.config.start_timeout_seconds:.0f}s; see {self.log_file}"
        )

    def stop(self, timeout_seconds: float = 60.0) -> bool:
        """Shut the broker down cleanly (SIGTERM, then SIGKILL after the timeout)."""
        pid = self._pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline and _process_alive(pid):
            time.sleep(0.2)
        if _process_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _process_alive(pid):
                time.sleep(0.1)
        self._pid_file.unlink(missing_ok=True)
        return True
