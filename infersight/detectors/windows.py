"""Drift windows: instances gathered per model until the window's size or time is up.

A size-bounded window always holds exactly ``size`` instances when tested, so that every test
is run on the sample size its threshold was set for; a record whose instances straddle two
windows counts in both. A time bound closes the window ``seconds`` after its first instance,
however few it holds.

An open window is kept by a :class:`WindowKeeper` (in the worker: the stream engine's state, in
the same checkpoint as the offsets of the records it holds), so that a restarted worker, or the
one a model moved to, goes on with the same window: every instance is tested in one window.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from infersight.config import WindowConfig
from infersight.statecodec import frame, unframe


@dataclass(slots=True)
class Window:
    """The instances of one model waiting for a drift test, with where they came from."""

    opened_at: float
    names: tuple[str, ...]
    chunks: list[np.ndarray[Any, Any]] = field(default_factory=list)
    count: int = 0
    request_ids: list[str] = field(default_factory=list)
    first_time: float = float("inf")
    last_time: float = float("-inf")

    def add(self, rows: np.ndarray[Any, Any], request_id: str, event_time: float) -> None:
        self.chunks.append(rows)
        self.count += rows.shape[0]
        if not self.request_ids or self.request_ids[-1] != request_id:
            self.request_ids.append(request_id)
        self.first_time = min(self.first_time, event_time)
        self.last_time = max(self.last_time, event_time)

    def rows(self) -> np.ndarray[Any, Any]:
        return np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]


@dataclass(slots=True)
class WindowBuffer:
    """The open window of one detector on one model, and the full ones ready for testing."""

    policy: WindowConfig
    current: Window | None = None

    def add(
        self,
        rows: np.ndarray[Any, Any],
        names: tuple[str, ...],
        request_id: str,
        event_time: float,
        now: float,
    ) -> list[Window]:
        """Add one record's instances; the windows they filled, in order."""
        full = []
        size = self.policy.size
        while rows.shape[0]:
            if self.current is None or self.current.names != names:
                if self.current is not None:
                    full.append(self.current)  # the features changed: test what came before
                self.current = Window(opened_at=now, names=names)
            room = rows.shape[0] if size is None else size - self.current.count
            self.current.add(rows[:room], request_id, event_time)
            rows = rows[room:]
            if size is not None and self.current.count >= size:
                full.append(self.current)
                self.current = None
        return full

    def expire(self, now: float) -> Window | None:
        """The open window when its time is up, else None."""
        seconds = self.policy.seconds
        window = self.current
        if window is None or seconds is None or now - window.opened_at < seconds:
            return None
        self.current = None
        return window


class WindowKeeper(Protocol):
    """Where open windows survive the process: ``save(..., None)`` when a window closed."""

    def load(self, model: Any, detector: str) -> Window | None: ...

    def save(self, model: Any, detector: str, window: Window | None) -> None: ...


def encode_window(window: Window) -> bytes:
    """Times, names and request ids as the header, then the instances as ``.npy`` bytes."""
    header = {
        "opened_at": window.opened_at,
        "names": window.names,
        "count": window.count,
        "request_ids": window.request_ids,
        "first_time": window.first_time if np.isfinite(window.first_time) else None,
        "last_time": window.last_time if np.isfinite(window.last_time) else None,
    }
    rows = io.BytesIO()
    if window.chunks:
        np.save(rows, window.rows(), allow_pickle=False)
    return frame(header, rows.getvalue())


def decode_window(blob: bytes) -> Window:
    header, data = unframe(blob)
    chunks = [np.load(io.BytesIO(data), allow_pickle=False)] if data else []
    first, last = header["first_time"], header["last_time"]
    return Window(
        opened_at=header["opened_at"],
        names=tuple(header["names"]),
        chunks=chunks,
        count=header["count"],
        request_ids=list(header["request_ids"]),
        first_time=float("inf") if first is None else first,
        last_time=float("-inf") if last is None else last,
    )
