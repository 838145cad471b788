"""Resolve the broker's jars from Maven Central once, into a cache folder."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from importlib import resources
from pathlib import Path


class ClasspathError(Exception):
    """Maven could not deliver the broker's jars."""


def pom_path() -> Path:
    """The pom that names the broker's jars (also at ``deploy/kafka/pom.xml``)."""
    return Path(str(resources.files("infersight.localkafka") / "pom.xml"))


def kafka_version() -> str:
    text = pom_path().read_text(encoding="utf-8")
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>", start)]


def resolve_classpath(maven_repo: Path) -> str:
    """The broker's classpath, fetched by Maven on first use and reused after that."""
    pom = pom_path()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = maven_repo / f"infersight-kafka-{digest}.classpath"
    if cached.exists():
        classpath = cached.read_text(encoding="utf-8").strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(":")):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ClasspathError(
            "Maven ('mvn') is needed once to fetch the Kafka jars; install it (apt install maven)"
        )
    maven_repo.mkdir(parents=True, exist_ok=True)
    output = maven_repo / f"infersight-kafka-{digest}.classpath.tmp"
    result = subprocess.run(
        [
            mvn,
            "--batch-mode",
            "--quiet",
            "-f",
            str(pom),
            f"-Dmaven.repo.local={maven_repo}",
            "dependency:build-classpath",
            f"-Dmdep.outputFile={output}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not output.exists():
        detail = (result.stdout + result.stderr).strip().splitlines()
        reason = next((line for line in detail if "ERROR" in line), detail[-1] if detail else "no output")
        raise ClasspathError(f"Maven could not fetch the Kafka {kafka_version()} jars: {reason}")
    output.replace(cached)
    return cached.read_text(encoding="utf-8").strip()
