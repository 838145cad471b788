"""Rows per second into the SQL store, and export speed, each against a plain baseline in the same run.

Writes: ``--records`` KServe v1 request/response pairs (4 features, decoded by the worker's decoder
beforehand) go through ``SqlStore.write`` in batches of ``--batch``, one transaction each: the
conversion to rows, the upsert and the feedback lookup are all timed. The baseline inserts the very
same row values, already serialised, with the driver's plain ``executemany`` of an ``INSERT`` (one
transaction per batch) into a fresh copy of the schema. The two take turns batch by batch, so that a
moment the machine stalls falls on both alike; a full garbage collection before the first keeps the
garbage of building the input (the records, the serialised rows) out of either clock.

Export: ``--export-rows`` stored inferences (bulk-loaded, outside the clock) are exported to
Parquet by ``infersight.sinks.export.export``; the baseline is a bare ``SELECT`` of the same columns
streamed row by row to a text file by the driver (a server-side cursor on PostgreSQL).

    python bench/store.py [--records 20000] [--export-rows 1000000] [--postgres URL] [--json PATH]

Without ``--postgres`` a throwaway PostgreSQL server (default durability settings) is started from
the distribution's binaries, as the tests do.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from common import exit_on_sigterm, write_json
from rich.console import Console
from rich.table import Table
from sqlalchemy import JSON

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # for tests.postgres, the throwaway server the tests use

from infersight.records import KSERVE_REQUEST, KSERVE_RESPONSE, Half, InferenceRecord, ModelRef, RawEvent  # noqa: E402
from infersight.sinks.export import export  # noqa: E402
from infersight.sinks.export.rows import SELECTED  # noqa: E402
from infersight.sinks.store import SqlStore  # noqa: E402
from infersight.sinks.store.filters import PayloadFilter  # noqa: E402
from infersight.sinks.store.models import Inference  # noqa: E402
from infersight.sinks.store.rows import inference_row  # noqa: E402
from infersight.streams.decode import decode_body  # noqa: E402

DEFAULT_JSON = BENCH_DIR / "results" / "store.json"
MODEL = ModelRef("bench", "iris", "default")
START = datetime(2025, 3, 1, tzinfo=UTC)
COLUMNS = [column.name for column in Inference.__table__.columns if column.name != "id"]
#: Columns SQLAlchemy serialises to JSON text before the driver sees them.
JSON_COLUMNS = {column.name for column in Inference.__table__.columns if isinstance(column.type, JSON)}

console = Console(soft_wrap=True)


def make_record(n: int, rng: random.Random) -> InferenceRecord:
    """One paired KServe v1 inference, decoded the way the worker decodes it."""
    request_id = f"{uuid.UUID(int=rng.getrandbits(128))}"
    at = START + timedelta(milliseconds=n)
    halves = []
    for event_type, body in (
        (KSERVE_REQUEST, {"instances": [[round(rng.uniform(4, 8), 2) for _ in range(4)]]}),
        (KSERVE_RESPONSE, {"predictions": [rng.randrange(3)]}),
    ):
        attributes = {
            "specversion": "1.0", "id": request_id, "source": "http://localhost:9081/", "type": event_type,
            "time": at.isoformat().replace("+00:00", "Z"), "inferenceservicename": MODEL.inferenceservice,
            "namespace": MODEL.namespace, "endpoint": MODEL.endpoint, "component": "predictor",
            "datacontenttype": "application/json",
        }  # fmt: skip
        data = orjson.dumps(body)
        payload = decode_body(data, "application/json", None)
        halves.append(Half(RawEvent(attributes, data), payload, at.timestamp()))
    return InferenceRecord(request_id, MODEL, halves[0], halves[1])


# --- plain driver access: the baselines --------------------------------------------------------


def sqlite_file(url: str) -> str:
    return url.removeprefix("sqlite:///")


def driver_value(column: str, value: Any, dialect: str) -> Any:
    """A row value as SQLAlchemy would hand it to the driver: JSON as text, SQLite times as text."""
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return orjson.dumps(value).decode()
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@contextlib.contextmanager
def raw_connection(url: str) -> Iterator[Any]:
    if url.startswith("sqlite"):
        connection = sqlite3.connect(sqlite_file(url))
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    else:
        import psycopg

        connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        yield connection
    finally:
        connection.close()


def insert_sql(dialect: str) -> str:
    marks = ", ".join("?" if dialect == "sqlite" else "%s" for _ in COLUMNS)
    return f"INSERT INTO inferences ({', '.join(COLUMNS)}) VALUES ({marks})"


# --- writes -------------------------------------------------------------------------------------


def fresh_url(kind: str, workdir: Path, server: str | None) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        return f"sqlite:///{workdir / (name + '.db')}"
    from tests.postgres import create_database

    assert server is not None
    return create_database(server, name)


def bench_writes(
    kind: str, records: list[InferenceRecord], batch: int, workdir: Path, server: str | None
) -> dict[str, Any]:
    """Each batch through ``SqlStore.write`` and through the baseline, one after the other.

    Taking turns (each side first every other batch) lets whatever slows the machine for a
    moment (a stalled fsync, another process) fall on both sides alike, rather than on whichever
    ran at that time; each side writes to its own fresh database.
    """
    store = SqlStore(fresh_url(kind, workdir, server))
    baseline_url = fresh_url(kind, workdir, server)
    SqlStore(baseline_url).close()  # the same schema, migrated
    now = datetime.now(UTC)
    rows = [inference_row(record, None, now) for record in records]
    params = [tuple(driver_value(c, row.get(c), kind) for c in COLUMNS) for row in rows]
    sql = insert_sql(kind)
    store_times: list[float] = []
    baseline_times: list[float] = []

    def write_store(start: int) -> None:
        started = time.perf_counter()
        store.write(records[start : start + batch])
        store_times.append(time.perf_counter() - started)

    def write_baseline(connection: Any, start: int) -> None:
        started = time.perf_counter()
        connection.cursor().executemany(sql, params[start : start + batch])
        connection.commit()
        baseline_times.append(time.perf_counter() - started)

    with raw_connection(baseline_url) as connection:
        gc.collect()  # neither side pays for the garbage of building its input
        for turn, start in enumerate(range(0, len(records), batch)):
            if turn % 2:
                write_baseline(connection, start)
                write_store(start)
            else:
                write_store(start)
                write_baseline(connection, start)
    store.close()
    return {
        "records": len(records),
        "store_rows_per_s": len(records) / sum(store_times),
        "executemany_rows_per_s": len(records) / sum(baseline_times),
        "store_batch_median_s": statistics.median(store_times),
        "executemany_batch_median_s": statistics.median(baseline_times),
    }


# --- export -------------------------------------------------------------------------------------


def bulk_load(url: str, kind: str, count: int, template: dict[str, Any]) -> None:
    """``count`` inferences like ``template`` with their own ids, times and features, outside the clock."""
    rng = random.Random(7)
    fixed = {c: driver_value(c, template.get(c), kind) for c in COLUMNS}
    position = {c: i for i, c in enumerate(COLUMNS)}

    def rows() -> Iterator[list[Any]]:
        for n in range(count):
            row = list(fixed.values())
            at = START + timedelta(milliseconds=n)
            features = [round(rng.uniform(4, 8), 2) for _ in range(4)]
            values = {
                "request_id": f"bulk-{n:08d}",
                "time": at, "request_time": at, "response_time": at, "request_received_at": at,
                "response_received_at": at,
                "inputs": [{"name": "instances", "kind": "float", "shape": [1, 4], "columns": None,
                            "data": [features]}],
                "request_body": orjson.dumps({"instances": [features]}),
            }  # fmt: skip
            for column, value in values.items():
                row[position[column]] = driver_value(column, value, kind)
            yield row

    with raw_connection(url) as connection:
        if kind == "sqlite":
            cursor = connection.cursor()
            batch: list[list[Any]] = []
            for row in rows():
                batch.append(row)
                if len(batch) == 10_000:
                    cursor.executemany(insert_sql(kind), batch)
                    batch = []
            cursor.executemany(insert_sql(kind), batch)
            connection.commit()
        else:
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY inferences ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in rows():
                    copy.write_row(row)
            connection.commit()
            connection.execute("ANALYZE inferences")
            connection.commit()


def bare_select(url: str, kind: str, path: Path) -> int:
    """The baseline: the export's columns, in the export's order, written as the driver returns them."""
    sql = f"SELECT {', '.join(SELECTED)} FROM inferences ORDER BY time, id"
    count = 0
    with raw_connection(url) as connection, path.open("w", newline="") as out:
        writer = csv.writer(out)
        cursor = connection.cursor() if kind == "sqlite" else connection.cursor(name="bare_select")
        if kind != "sqlite":
            cursor.itersize = 1000
        cursor.execute(sql)
        for row in cursor:
            writer.writerow(row)
            count += 1
    return count


def bench_export(kind: str, count: int, workdir: Path, server: str | None) -> dict[str, Any]:
    url = fresh_url(kind, workdir, server)
    store = SqlStore(url)
    template = inference_row(make_record(0, random.Random(1)), None, datetime.now(UTC))
    console.print(f"{kind}: loading {count:,} inferences for the export …")
    bulk_load(url, kind, count, template)

    path = workdir / f"export-{kind}.parquet"
    started = time.perf_counter()
    result = export(store.engine, PayloadFilter(), path, "parquet")
    export_s = time.perf_counter() - started
    store.close()
    assert result.rows == count, result

    started = time.perf_counter()
    selected = bare_select(url, kind, workdir / f"select-{kind}.csv")
    select_s = time.perf_counter() - started
    assert selected == count
    return {
        "inferences": count,
        "export_s": export_s,
        "export_rows_per_s": count / export_s,
        "select_s": select_s,
        "select_rows_per_s": count / select_s,
        "parquet_bytes": path.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="inferences written (default 20000)")
    parser.add_argument("--batch", type=int, default=500, help="records per write, as a worker batches (500)")
    parser.add_argument(
        "--export-rows", type=int, default=1_000_000, help="stored inferences exported (1000000)"
    )
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="which of sqlite,postgresql to measure"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("INFERSIGHT_TEST_POSTGRES_URL"),
        help="a PostgreSQL server URL to create databases on (default: start a throwaway one)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"figures file (default {DEFAULT_JSON})"
    )
    args = parser.parse_args()
    exit_on_sigterm()
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]

    rng = random.Random(42)
    records = [make_record(n, rng) for n in range(args.records)]
    figures: dict[str, Any] = {"records": args.records, "batch": args.batch, "writes": {}, "export": {}}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="infersight-bench-store-")))
        server = args.postgres
        if "postgresql" in kinds and not server:
            from tests.postgres import local_postgres

            console.print("starting a throwaway PostgreSQL server …")
            server = stack.enter_context(local_postgres(durable=True))
        for kind in kinds:
            console.print(f"{kind}: writing {args.records:,} records …")
            figures["writes"][kind] = bench_writes(kind, records, args.batch, workdir, server)
            figures["export"][kind] = bench_export(kind, args.export_rows, workdir, server)

    table = Table(
        title=f"SQL store: {args.records:,} records, batches of {args.batch}; export of {args.export_rows:,}"
    )
    for header in ("database", "measure", "infersight", "baseline", "ratio"):
        table.add_column(header, justify="right" if header in ("infersight", "baseline", "ratio") else "left")
    for kind in kinds:
        w, e = figures["writes"][kind], figures["export"][kind]
        table.add_row(
            kind,
            "write rows/s (SqlStore.write vs executemany)",
            f"{w['store_rows_per_s']:,.0f}",
            f"{w['executemany_rows_per_s']:,.0f}",
            f"{w['store_rows_per_s'] / w['executemany_rows_per_s']:.0%}",
        )
        table.add_row(
            kind,
            "export rows/s (Parquet vs bare SELECT to file)",
            f"{e['export_rows_per_s']:,.0f}",
            f"{e['select_rows_per_s']:,.0f}",
            f"{e['export_rows_per_s'] / e['select_rows_per_s']:.0%}",
        )
        table.add_row(kind, "export seconds", f"{e['export_s']:.1f}", f"{e['select_s']:.1f}", "")  # fmt: skip
    console.print(table)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
