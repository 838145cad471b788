"""Events Kafka could not take yet, kept on the ingest's local disk until it can.

A logger that never retries loses every event the ingest cannot answer 202; while Kafka is away
the ingest answers from here instead. Each ingest process appends to a spool file of its own in
``ingest.spool.path``: SQLite in WAL mode with ``synchronous=FULL``, one transaction (one fsync)
per group of requests that arrived while the previous group was being written, so a request is
answered only once its events are on disk, and the rows come back oldest first. SQLite is
crash-safe by design (a SIGKILL or power loss keeps every committed row and never a torn one),
ships with Python and writes the same file format everywhere.

A spool file whose process is gone (killed, or stopped while Kafka was still away) is found by
the next ingest that starts on the same folder and drained by it: each file is held with an
exclusive ``flock`` while its process lives, so a free lock means an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from infersight.records import RawEvent

SUFFIX = ".spool"
_LOCK_SUFFIX = ".lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spooled_at REAL NOT NULL,
    attributes BLOB NOT NULL,
    encoding TEXT,
    data BLOB NOT NULL
)
"""


class SpoolFull(Exception):
    """The spool holds ``max_bytes`` already: the event cannot be acknowledged."""


@dataclass(frozen=True, slots=True)
class Spooled:
    """One event read back from a spool file, with the row id that removes it and its size."""

    id: int
    event: RawEvent
    #: What it counts against ``max_bytes``: its body and its attributes as the file holds them.
    size: int


#: An event as a row is written: its attributes as JSON, its encoding, its body.
Row = tuple[bytes, str | None, bytes]


def row_of(event: RawEvent) -> Row:
    return orjson.dumps(event.attributes), event.content_encoding, event.data


def row_size(row: Row) -> int:
    return len(row[0]) + len(row[2])


class SpoolFile:
    """One SQLite spool file; every call runs on the caller's thread (see :class:`Spool`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute(_SCHEMA)
        self.events, self.bytes, oldest = self._connection.execute(
            "SELECT count(*), coalesce(sum(length(data) + length(attributes)), 0), min(spooled_at)"
            " FROM events"
        ).fetchone()
        self.oldest: float | None = oldest

    def append(self, rows: Sequence[Row], now: float) -> None:
        """Write ``rows`` in one transaction: on disk when this returns."""
        with self._transaction():
            self._connection.executemany(
                "INSERT INTO events (spooled_at, attributes, encoding, data) VALUES (?, ?, ?, ?)",
                [(now, *row) for row in rows],
            )

    def read(self, limit: int) -> list[Spooled]:
        """The ``limit`` oldest events (drained ones are removed, so these are the next to send)."""
        rows = self._connection.execute(
            "SELECT id, attributes, encoding, data FROM events ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [
            Spooled(
                row_id,
                RawEvent(attributes=orjson.loads(attributes), data=data, content_encoding=encoding),
                len(attributes) + len(data),
            )
            for row_id, attributes, encoding, data in rows
        ]

    def remove_through(self, row_id: int) -> tuple[int, float | None]:
        """Remove every event up to ``row_id``; what is left (events) and the oldest one's time."""
        with self._transaction():
            self._connection.execute("DELETE FROM events WHERE id <= ?", (row_id,))
            left, oldest = self._connection.execute("SELECT count(*), min(spooled_at) FROM events").fetchone()
        return int(left), oldest

    def close(self) -> None:
        self._connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")


def _remove_files(path: Path) -> None:
    """A spool file with SQLite's companions and its lock file."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.with_suffix(_LOCK_SUFFIX).unlink(missing_ok=True)


def _lock(path: Path) -> IO[bytes] | None:
    """Hold ``path``'s lock file for this process; None when another process holds it."""
    handle = open(path.with_suffix(_LOCK_SUFFIX), "ab")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Spool:
    """This process's spool file, and the orphaned files of earlier ingests in the same folder.

    Appends from the event loop are grouped: while one transaction is being written, the
    requests that arrive wait together for the next one, so a burst costs one fsync per group
    rather than per event. SQLite runs on one thread of its own.
    """

    def __init__(self, folder: Path, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.max_bytes = max_bytes
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-spool")
        path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        lock = _lock(path)
        assert lock is not None, "a fresh name is nobody else's"
        self._locks: dict[Path, IO[bytes]] = {path: lock}
        self.own = SpoolFile(path)
        #: Orphaned spool files taken over from ingests that are gone, oldest name first.
        self.orphans: list[SpoolFile] = []
        #: Events and bytes held, in every file, counting those still being written.
        self.events = 0
        self.bytes = 0
        #: Of ``events``, those in this process's own file: while any wait, new events queue behind them.
        self.own_events = 0
        self.spooled = 0
        self.drained = 0
        self._oldest: dict[Path, float | None] = {path: None}
        self._waiting: list[tuple[list[Row], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.adopt_orphans()

    def adopt_orphans(self) -> list[SpoolFile]:
        """Take over the spool files in the folder that no living ingest holds; the new ones."""
        found = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if path in self._locks:
                continue
            lock = _lock(path)
            if lock is None:
                continue  # a living ingest's
            self._locks[path] = lock
            orphan = SpoolFile(path)
            self.orphans.append(orphan)
            self.events += orphan.events
            self.bytes += orphan.bytes
            self._oldest[path] = orphan.oldest
            found.append(orphan)
        return found

    @property
    def oldest(self) -> float | None:
        """When the oldest event held was spooled (Unix seconds), None when empty."""
        times = [value for value in self._oldest.values() if value is not None]
        return min(times) if times else None

    async def append(self, events: Sequence[RawEvent]) -> None:
        """Return once ``events`` are on disk; :class:`SpoolFull` past ``max_bytes``."""
        rows = [row_of(event) for event in events]
        size = sum(row_size(row) for row in rows)
        if self.bytes + size > self.max_bytes:
            raise SpoolFull(f"the spool holds {self.bytes} bytes of its {self.max_bytes}")
        self.events += len(events)
        self.own_events += len(events)
        self.bytes += size
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((rows, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        try:
            await future
        except BaseException:
            self.events -= len(events)
            self.own_events -= len(events)
            self.bytes -= size
            raise
        self.spooled += len(events)

    async def _write_groups(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            group, self._waiting = self._waiting, []
            rows = [row for batch, _ in group for row in batch]
            now = time.time()
            try:
                await loop.run_in_executor(self._thread, self.own.append, rows, now)
            except Exception as exc:  # the disk refused: nobody in this group is acknowledged
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if self._oldest[self.own.path] is None:
                self._oldest[self.own.path] = now
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    async def read(self, file: SpoolFile, limit: int) -> list[Spooled]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, file.read, limit)

    async def remove(self, file: SpoolFile, drained: Sequence[Spooled]) -> None:
        """The events up to the last of ``drained`` are in Kafka: forget them."""
        if not drained:
            return
        left, oldest = await asyncio.get_running_loop().run_in_executor(
            self._thread, file.remove_through, drained[-1].id
        )
        self.events -= len(drained)
        if file is self.own:
            self.own_events -= len(drained)
        self.bytes -= sum(item.size for item in drained)
        self.drained += len(drained)
        self._oldest[file.path] = oldest if left else None
        if not left and file is not self.own:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._retire, file)

    def _retire(self, file: SpoolFile) -> None:
        """An orphan drained whole: its file goes."""
        file.close()
        self.orphans.remove(file)
        del self._oldest[file.path]
        _remove_files(file.path)
        self._locks.pop(file.path).close()

    def close(self) -> None:
        """Close every file; an empty own file is removed, a non-empty one waits for the next ingest."""
        self._thread.shutdown(wait=True)
        for file in (*self.orphans, self.own):
            file.close()
        if self.own_events == 0:
            _remove_files(self.own.path)
        for lock in self._locks.values():
            lock.close()
