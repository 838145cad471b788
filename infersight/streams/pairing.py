"""Pair each request with its response, in either arrival order, over any key-value state.

A half waits in the state of its model's key (the Kafka key, ``namespace/inferenceservice``)
under ``<component>|<request id>``, as received: attributes, body bytes, encoding and arrival
time. In the worker the state is the stream engine's (RocksDB with a changelog topic), so a
restarted or rebalanced worker goes on with every pending half; here it is anything with
``get_bytes``, ``set_bytes`` and ``delete``, which keeps the logic testable on its own.

Most responses come right after their request, within one checkpoint: a half is written to the
state only when the checkpoint closes (:meth:`Pairer.commit`, called as the engine flushes its
sinks, before it writes the changelog and commits offsets) if it is still waiting then. A pair
completed within one checkpoint costs the state nothing, and every half whose offset is committed
is either handed on or in the state.

Once a pair is handed on its key is free again, so a client that reuses a ``ce-id`` for its
next inference pairs that one anew. A half that comes again, byte for byte (the same time and
body), while its inference waits or is remembered as handed on (a producer's resend) is
dropped, so detectors, windows and counters see each inference once; the memory is bounded
(``dedupe_seconds``, ``dedupe_max_keys``) and past it the store's idempotent writes still keep
one row each.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Protocol

from infersight.records import REQUEST, Half, InferenceRecord, Payload, RawEvent, half_of, request_id_of
from infersight.statecodec import frame, unframe

Decoder = Callable[[RawEvent], Payload]
#: At most this many waiting halves are kept decoded in memory; past it they are parsed again.
MAX_DECODED = 100_000


class PendingState(Protocol):
    """The part of the engine's per-key state that pairing uses."""

    def get_bytes(self, key: bytes, default: None = None) -> bytes | None: ...

    def set_bytes(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


def pending_key(event: RawEvent) -> bytes:
    """What a request shares with its response within its model: component and request id.

    Bytes, so that the engine's state takes it as it is instead of serialising it as JSON.
    """
    return f"{event.attributes.get('component', '')}|{request_id_of(event)}".encode()


def encode_pending(event: RawEvent, received_at: float) -> bytes:
    """A waiting half: its attributes, encoding and arrival as a header, the body's bytes as they came."""
    return frame([event.attributes, event.content_encoding, received_at], event.data)


def decode_pending(blob: bytes) -> tuple[RawEvent, float]:
    (attributes, encoding, received_at), data = unframe(blob)
    return RawEvent(attributes=attributes, data=data, content_encoding=encoding), float(received_at)


def fingerprint(event: RawEvent) -> int:
    """What tells a resent half (the same) from another inference under a reused ``ce-id``."""
    return hash((event.attributes.get("time"), event.type, event.data))


def lone_record(half: Half) -> InferenceRecord:
    """A half whose other half never came, as a record of its own."""
    alone_request = half_of(half.event) == REQUEST
    return InferenceRecord(
        request_id=request_id_of(half.event),
        model=half.event.model,
        request=half if alone_request else None,
        response=None if alone_request else half,
    )


def _paired(half: Half, other: Half) -> InferenceRecord:
    request, response = (half, other) if half_of(half.event) == REQUEST else (other, half)
    return InferenceRecord(
        request_id=request_id_of(half.event), model=half.event.model, request=request, response=response
    )


class PendingIndex:
    """When each waiting half arrived, per partition, oldest first: what expiry looks at.

    It lives in memory beside the engine's state, is rebuilt from that state when a partition
    is assigned, and may hold keys the state no longer has (expiry checks the state).
    """

    def __init__(self) -> None:
        self._partitions: dict[int, OrderedDict[tuple[bytes, bytes], float]] = {}
        #: Partitions whose every waiting half is indexed: a key missing here is missing in state.
        self.complete: set[int] = set()

    def holds(self, partition: int, prefix: bytes, key: bytes) -> bool:
        """Whether the state may hold ``key``: indexed, or its partition not indexed whole yet."""
        waiting = self._partitions.get(partition)
        return partition not in self.complete or (waiting is not None and (prefix, key) in waiting)

    def add(self, partition: int, prefix: bytes, key: bytes, arrived: float) -> None:
        self._partitions.setdefault(partition, OrderedDict())[(prefix, key)] = arrived

    def remove(self, partition: int, prefix: bytes, key: bytes) -> None:
        waiting = self._partitions.get(partition)
        if waiting is not None:
            waiting.pop((prefix, key), None)

    def drop(self, partition: int) -> None:
        self._partitions.pop(partition, None)
        self.complete.discard(partition)

    def due(self, cutoff: float) -> Iterator[tuple[int, bytes, bytes]]:
        """Halves that arrived before ``cutoff``, taken out of the index as they are yielded."""
        for partition, waiting in self._partitions.items():
            while waiting:
                (prefix, key), arrived = next(iter(waiting.items()))
                if arrived >= cutoff:
                    break
                del waiting[(prefix, key)]
                yield partition, prefix, key

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._partitions.values())


class Pairer:
    """Offers halves to the state and gives back the records they complete.

    What a checkpoint changed in memory (inferences remembered as handed on, halves taken out
    of the index by expiry) is kept apart until :meth:`commit`; :meth:`rollback` undoes it when
    the checkpoint is read again, as the engine undoes the state itself.
    """

    def __init__(
        self,
        decode: Decoder,
        timeout_seconds: float,
        *,
        dedupe_seconds: float = 600.0,
        dedupe_max_keys: int = 500_000,
        on_duplicate: Callable[[RawEvent], None] | None = None,
    ) -> None:
        self.decode = decode
        self.timeout = timeout_seconds
        self.dedupe_seconds = dedupe_seconds
        self.dedupe_max_keys = dedupe_max_keys
        self.on_duplicate = on_duplicate
        self.index = PendingIndex()
        # Inferences handed on, oldest first: when, and the fingerprints of their halves.
        self._handed_on: OrderedDict[tuple[bytes, bytes], tuple[float, frozenset[int]]] = OrderedDict()
        # Waiting halves as decoded on arrival, with the bytes they were kept as: a body is parsed once.
        self._decoded: dict[tuple[bytes, bytes], tuple[Half, bytes]] = {}
        # Halves waiting since this checkpoint began, not in the state yet: by partition, prefix, key.
        self._unwritten: dict[tuple[int, bytes, bytes], tuple[PendingState, Half]] = {}
        self._remembered: dict[tuple[bytes, bytes], tuple[float, frozenset[int]]] = {}
        self._expired: list[tuple[int, bytes, bytes, float]] = []
        self._paired_out: list[tuple[int, bytes, bytes, float]] = []

    def offer(self, state: PendingState, partition: int, prefix: bytes, half: Half) -> list[InferenceRecord]:
        """The records ``half`` completes: with the half waiting in ``state``, if there is one.

        Otherwise the half waits in ``state``. A copy of a waiting or handed-on half is dropped;
        a second request (or response) under the same key that is not a copy pushes the waiting
        one out as a record alone.
        """
        event = half.event
        key = pending_key(event)
        mark = fingerprint(event)
        if self._was_handed_on(prefix, key, mark):
            self._duplicate(event)
            return []
        slot = (partition, prefix, key)
        unwritten = self._unwritten.get(slot)
        other = unwritten[1] if unwritten is not None else self._stored(state, partition, prefix, key)
        records = []
        if other is not None:
            if half_of(other.event) != half_of(event):
                if unwritten is not None:
                    del self._unwritten[slot]
                else:
                    state.delete(key)
                    self._decoded.pop((prefix, key), None)
                self.index.remove(partition, prefix, key)
                self._paired_out.append((partition, prefix, key, other.received_at))
                self._remember(prefix, key, half.received_at, frozenset({mark, fingerprint(other.event)}))
                return [_paired(half, other)]
            if fingerprint(other.event) == mark:
                self._duplicate(event)
                return []
            records.append(lone_record(other))
            if unwritten is None:
                state.delete(key)  # this half may pair before it is written: nothing of the other stays
        self._unwritten[slot] = (state, half)
        self.index.add(partition, prefix, key, half.received_at)
        return records

    def expire(
        self, state: PendingState, partition: int, prefix: bytes, key: bytes
    ) -> InferenceRecord | None:
        """The half waiting under ``key`` as a record alone; None when it paired or left meanwhile."""
        unwritten = self._unwritten.pop((partition, prefix, key), None)
        if unwritten is not None:
            half = unwritten[1]
        else:
            stored = state.get_bytes(key)
            if stored is None:
                return None
            half = self._waiting(prefix, key, stored)
            state.delete(key)
            self._decoded.pop((prefix, key), None)
        self._expired.append((partition, prefix, key, half.received_at))
        self._remember(prefix, key, half.received_at, frozenset({fingerprint(half.event)}))
        return lone_record(half)

    def due(self, now: float) -> list[tuple[int, bytes, bytes]]:
        """The waiting halves whose time is up."""
        return list(self.index.due(now - self.timeout))

    def restore(self, partition: int, prefix: bytes, blob: bytes) -> None:
        """Index a half found in the state of a newly assigned partition."""
        event, arrived = decode_pending(blob)
        self.index.add(partition, prefix, pending_key(event), arrived)

    def drop(self, partition: int) -> None:
        """The partition went to another worker, with its state."""
        self.index.drop(partition)
        self._decoded.clear()
        for slot in [slot for slot in self._unwritten if slot[0] == partition]:
            del self._unwritten[slot]

    def commit(self, now: float) -> None:
        """The checkpoint closes: the halves still waiting go into the state, what it handed on is
        remembered."""
        for (_, prefix, pending), (state, half) in self._unwritten.items():
            blob = encode_pending(half.event, half.received_at)
            state.set_bytes(pending, blob)
            if len(self._decoded) < MAX_DECODED:
                self._decoded[(prefix, pending)] = (half, blob)
        self._unwritten.clear()
        for key, (when, marks) in self._remembered.items():
            earlier = self._handed_on.pop(key, None)
            self._handed_on[key] = (when, marks | earlier[1] if earlier else marks)
        while len(self._handed_on) > self.dedupe_max_keys:
            self._handed_on.popitem(last=False)
        self._remembered.clear()
        self._expired.clear()
        self._paired_out.clear()
        cutoff = now - self.dedupe_seconds
        while self._handed_on:
            key, (when, _) = next(iter(self._handed_on.items()))
            if when >= cutoff:
                break
            del self._handed_on[key]

    def rollback(self) -> None:
        """The checkpoint will be read again: the halves it took out wait again, nothing was handed on."""
        for partition, prefix, key, arrived in (*self._expired, *self._paired_out):
            self.index.add(partition, prefix, key, arrived)
        self._remembered.clear()
        self._expired.clear()
        self._paired_out.clear()
        self._decoded.clear()
        self._unwritten.clear()

    def _stored(self, state: PendingState, partition: int, prefix: bytes, key: bytes) -> Half | None:
        """The half waiting in the state under ``key``; most halves are the first of their
        inference, and the index spares the state a look for them."""
        if not self.index.holds(partition, prefix, key):
            return None
        stored = state.get_bytes(key)
        return self._waiting(prefix, key, stored) if stored is not None else None

    def _waiting(self, prefix: bytes, key: bytes, stored: bytes) -> Half:
        cached = self._decoded.get((prefix, key))
        if cached is not None and cached[1] == stored:
            return cached[0]
        event, arrived = decode_pending(stored)
        return Half(event=event, payload=self.decode(event), received_at=arrived)

    def _was_handed_on(self, prefix: bytes, key: bytes, mark: int) -> bool:
        for memory in (self._remembered, self._handed_on):
            handed_on = memory.get((prefix, key))
            if handed_on is not None and mark in handed_on[1]:
                return True
        return False

    def _duplicate(self, event: RawEvent) -> None:
        if self.on_duplicate is not None:
            self.on_duplicate(event)

    def _remember(self, prefix: bytes, key: bytes, when: float, marks: frozenset[int]) -> None:
        if self.dedupe_max_keys and self.dedupe_seconds:
            earlier = self._remembered.get((prefix, key))
            self._remembered[(prefix, key)] = (when, marks | earlier[1] if earlier else marks)
