"""Every fault scenario, N times: sent, acknowledged, stored, lost and duplicated per scenario.

The scenarios are the project's fault tests (real ingest, worker, broker and PostgreSQL
processes); each run of each appends its end-to-end counts to a report file, which this script
sums into one table. A run whose test failed is counted as failed, with its counts when it got
that far. CI runs each scenario once; this runs them ``--runs`` times (default 10):

    python bench/faults.py [--runs 10] [--only sigkill,outage] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results" / "faults.json"

#: Short name → the fault test that plays it.
SCENARIOS = {
    "sigkill": (
        "test_faults.py",
        "test_a_worker_killed_mid_stream_stores_every_acknowledged_inference_exactly_once",
    ),
    "sigkill-pending": ("test_worker_faults.py", "test_killed_worker_loses_no_pending_half"),
    "sigkill-20": (
        "test_worker_resilience.py",
        "test_a_worker_killed_at_twenty_random_moments_loses_and_repeats_nothing",
    ),
    "worker-leaves": ("test_worker_faults.py", "test_pairs_and_detector_state_move_when_a_worker_leaves"),
    "workers-churn": (
        "test_worker_resilience.py",
        "test_three_workers_joining_and_leaving_under_traffic_store_everything_once",
    ),
    "postgresql-outage": (
        "test_faults.py",
        "test_postgresql_stopped_under_a_writing_worker_holds_offsets_and_catches_up",
    ),
    "broker-outage": (
        "test_kafka_outage.py",
        "test_broker_outage_every_event_is_spooled_acknowledged_and_stored",
    ),
    "broker-hangs": (
        "test_kafka_outage.py",
        "test_a_hung_broker_is_noticed_by_the_deadline_and_its_events_spooled",
    ),
    "broker-hangs-at-join": (
        "test_kafka_outage.py",
        "test_a_broker_that_hangs_while_a_worker_joins_its_group_holds_nothing_back",
    ),
    "ingest-restart": ("test_ingest_restart.py", "test_an_ingest_restarted_under_traffic_loses_no_event"),
    "ingest-killed-spooling": (
        "test_kafka_outage.py",
        "test_an_ingest_killed_while_it_spools_drains_its_spool_when_started_again",
    ),
    "broker-late": ("test_worker_resilience.py", "test_a_worker_started_before_its_broker_waits_for_it"),
    "detector-raises": (
        "test_worker_resilience.py",
        "test_a_detector_that_raises_stops_the_worker_without_committing_past_it",
    ),
    "record-refused": (
        "test_worker_resilience.py",
        "test_a_record_the_database_refuses_is_dead_lettered_and_the_rest_stored",
    ),
    "reply-down": (
        "test_faults.py",
        "test_a_reply_url_that_never_answers_sends_detections_to_the_dead_letter_topic",
    ),
    "exactly-once": (
        "test_worker_resilience.py",
        "test_exactly_once_commits_records_dead_letters_and_offsets_together",
    ),
}
COUNTS = ("sent", "acknowledged", "stored", "lost", "duplicated")


def run_once(test: tuple[str, str], report: Path, log: Path) -> bool:
    """One run of one scenario's test; its counts land in ``report``."""
    node = f"tests/{test[0]}::{test[1]}"
    env = {**os.environ, "INFERSIGHT_FAULTS_REPORT": str(report)}
    with log.open("ab") as output:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", node],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return result.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each scenario")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="infersight-faults-"))
    totals: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"runs": 0, "failed": 0, **dict.fromkeys(COUNTS, 0)}
    )
    for name in chosen:
        for run in range(1, args.runs + 1):
            report = folder / f"{name}-{run}.jsonl"
            started = time.monotonic()
            passed = run_once(SCENARIOS[name], report, folder / f"{name}.log")
            lines = report.read_text().splitlines() if report.exists() else []
            row = totals[name]
            row["runs"] += 1
            row["failed"] += 0 if passed else 1
            for line in lines:
                counts = json.loads(line)
                for key in COUNTS:
                    row[key] += int(counts[key])
            state = "passed" if passed else f"FAILED (log: {folder / f'{name}.log'})"
            console.print(f"{name} run {run}/{args.runs}: {state} in {time.monotonic() - started:.0f}s")
    table = Table(title=f"fault scenarios, {args.runs} runs each")
    for column in ("scenario", "runs", "failed", *COUNTS):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name in chosen:
        row = totals[name]
        table.add_row(name, *(f"{row[key]:,}" for key in ("runs", "failed", *COUNTS)))
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "scenarios": totals}, indent=2))
    bad = [
        name
        for name in chosen
        if totals[name]["failed"] or totals[name]["lost"] or totals[name]["duplicated"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
