"""The one interface every sink shares: write a batch, flush it, or push back.

The worker hands each checkpoint's work to every sink as one :class:`Batch`, flushes them all,
and commits its offsets only after every flush returned. A sink that cannot take the batch now
(the database is away, the broker does not answer) raises :class:`Backpressure`: the worker then
commits nothing, pauses its partitions for ``retry_after`` seconds and reads the batch again.
A sink that can tell one bad item from the rest sends that item to the dead-letter topic itself
through a :class:`Publish`, so that one refused record never holds up the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from infersight.records import Detection, InferenceRecord, RawEvent

Headers = list[tuple[str, bytes]]


class Backpressure(Exception):
    """The sink cannot take the batch now; nothing is committed and the batch comes again."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Batch:
    """What one checkpoint produced: scored records, detections, and feedback events."""

    records: Sequence[InferenceRecord] = ()
    detections: Sequence[Detection] = ()
    feedback: Sequence[RawEvent] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.records or self.detections or self.feedback)


class Publish(Protocol):
    """Produce one Kafka record through the worker's producer (inside its transaction when on)."""

    def __call__(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None: ...


class Sink(Protocol):
    """A destination of batches; ``flush`` returns only once what was written is durable."""

    name: str

    def write(self, batch: Batch) -> None: ...

    def flush(self) -> None: ...

    @property
    def pending(self) -> bool:
        """Whether the sink holds work of its own that the next flush completes."""
        ...
