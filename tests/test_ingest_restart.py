"""Restarting the ingest under traffic from senders that never retry loses nothing.

A new ingest binds the same port (``SO_REUSEPORT``) and becomes ready; the old one gets SIGTERM,
drains (``/readyz`` 503, ``Connection: close`` on every answer, new connections steered to the
new one), then stops. Every post is answered, every answer is 202, and every event is in Kafka.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, read_topic, report_fault, run_ingest, wait_until
from tests.traffic import Traffic

pytestmark = pytest.mark.slow

DRAIN_SECONDS = "3"


def test_an_ingest_restarted_under_traffic_loses_no_event(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"test.restart.{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {"INFERSIGHT_INGEST__DRAIN_SECONDS": DRAIN_SECONDS}
    old = run_ingest(kafka_bootstrap, topic, tmp_path, port=port, **env)
    first = old.__enter__()
    try:
        with run_ingest(kafka_bootstrap, topic, tmp_path, port=port, **env) as second:
            traffic = Traffic(first.url, senders=5, pause=0.005)
            with traffic:
                wait_until(lambda: traffic.count()[202] >= 200, 60, "traffic before the restart")
                # /readyz on the shared port may be the old one's answer: the new one's log says when
                # it serves and reaches Kafka.
                wait_until(
                    lambda: "Kafka answers" in second.log.read_text(), 60, "the new ingest to be ready"
                )
                before = traffic.count()[202]
                os.kill(first.pid, signal.SIGTERM)
                assert first.process.wait(timeout=30) is not None  # drained and exited by itself
                after_stop = traffic.count()[202]
                assert after_stop > before, "the senders went on while the old ingest drained"
                wait_until(lambda: traffic.count()[202] >= after_stop + 200, 60, "traffic to the new ingest")
            assert httpx.get(f"{second.url}/readyz", timeout=10).status_code == 200
    finally:
        old.__exit__(None, None, None)
    statuses = traffic.count()
    in_kafka = {dict(record.headers)["ce_id"].decode() for record in read_topic(kafka_bootstrap, topic)}  # type: ignore[attr-defined]
    acknowledged = traffic.acknowledged()
    lost = len(set(traffic.answers) - in_kafka)
    report_fault(
        "ingest restarted", len(traffic.answers), len(acknowledged), len(acknowledged & in_kafka), lost, 0
    )
    assert set(statuses) == {202}, (statuses, traffic.errors)  # no refused connection, no reset, no 503
    assert lost == 0
