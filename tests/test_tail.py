"""``infersight tail`` on a real broker: events and detections as lines, whole ids, from the end."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

from kafka import KafkaProducer

from tests.helpers import kafka_environment
from tests.test_ingest import kserve_headers


def produce_event(producer: KafkaProducer, topic: str, request_id: str, kind: str) -> None:
    """A KServe event in the binary mode the ingest writes (``ce_`` headers)."""
    headers = [
        ("ce_" + name[3:].lower(), value.encode())
        for name, value in kserve_headers(request_id, kind).items()
        if name.startswith("Ce-")
    ]
    body = b'{"instances": [[1.0]]}' if kind == "request" else b'{"predictions": [0]}'
    producer.send(
        topic, key=b"models/iris", value=body, headers=[("content-type", b"application/json"), *headers]
    )


DETECTION = {
    "detector": "ks",
    "algorithm": "KSDrift",
    "kind": "drift",
    "namespace": "models",
    "inferenceservice": "iris",
    "component": "predictor",
    "endpoint": "default",
    "detected": True,
    "statistic": 0.8,
    "p_value": 1e-6,
    "threshold": 0.0125,
    "features": [],
    "window": {"start": "2025-03-01T12:00:00Z", "end": "2025-03-01T12:00:19Z", "instances": 100},
    "request_ids": [],
}


class Tail:
    """``infersight tail`` running: its stdout lines, and an event set once it reads its topics."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        lines: list[str],
        reading: threading.Event,
        out: threading.Thread,
    ) -> None:
        self.process, self.lines, self.reading, self._out = process, lines, reading, out

    def finished(self, timeout: float = 60) -> int:
        """Its exit status once it exited and every line it wrote is read."""
        status = self.process.wait(timeout=timeout)
        self._out.join(timeout=10)
        return status


def run_tail(env: dict[str, str], *args: str) -> Tail:
    process = subprocess.Popen(
        [sys.executable, "-m", "infersight", "tail", *args],
        env={**env, "COLUMNS": "80"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reading = threading.Event()

    def read_out() -> None:
        assert process.stdout is not None
        lines.extend(line.rstrip("\n") for line in process.stdout)

    def read_err() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("reading "):
                reading.set()

    out = threading.Thread(target=read_out, daemon=True)
    out.start()
    threading.Thread(target=read_err, daemon=True).start()
    return Tail(process, lines, reading, out)


def test_tail_prints_events_and_detections_with_whole_ids(kafka_bootstrap: str) -> None:
    topic = f"tail-{uuid.uuid4().hex[:8]}"
    env = kafka_environment(kafka_bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    long_id = "request-" + "x" * 80 + "-end"
    produce_event(producer, topic, long_id, "request")
    produce_event(producer, topic, long_id, "response")
    producer.send(f"{topic}.detections", value=json.dumps(DETECTION).encode())
    producer.flush()

    first = run_tail(env, "--from-beginning", "--count", "3")
    assert first.finished() == 0
    lines = first.lines
    events = [line for line in lines if " B  id " in line]
    assert len(events) == 2 and all(line.endswith(f"id {long_id}") for line in events), lines
    assert {line.split()[1] for line in events} == {"request", "response"}
    (drift,) = [line for line in lines if "drift ks DETECTED" in line]
    assert "p 1e-06 (threshold 0.0125) over 100" in drift and "models/iris default/predictor" in drift

    # From the end: only what is produced after it started reading.
    later = run_tail(env, "--count", "1", "--no-detections", "--model", "iris")
    try:
        assert later.reading.wait(timeout=60), "tail never said it was reading"
        produce_event(producer, topic, "the-new-one", "request")
        producer.flush()
        assert later.finished() == 0
    finally:
        if later.process.poll() is None:
            later.process.kill()
        producer.close()
    assert len(later.lines) == 1 and later.lines[0].endswith("id the-new-one"), later.lines
