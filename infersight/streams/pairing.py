"""Pair each request with its response, in either arrival order.

Pending halves wait in a table keyed ``<partition>|<namespace>/<inferenceservice>|<request id>``
(bytes), whose values are the half as received (attributes, body, arrival time). In the worker the
table is a Faust table backed by a changelog topic, so a restarted worker recovers every pending
half; here it is any mutable mapping, which keeps the logic testable on its own.

A half that comes again after its inference was handed on (a logger's retry, a producer's
resend, a batch published twice) is dropped rather than paired a second time, so detectors,
windows and counters see each inference once. The pairer remembers what it handed on for
``dedupe_seconds`` (and at most ``dedupe_max_keys`` inferences) in memory; past that, or in a
worker that took over after a crash, the store's idempotent writes still keep one row each.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Container, MutableMapping, Sequence

import orjson

from infersight.records import REQUEST, Half, InferenceRecord, Payload, RawEvent, half_of, request_id_of

Decoder = Callable[[RawEvent], Payload]
DuplicateHandler = Callable[[Half], None]
REQUEST_BIT, RESPONSE_BIT = 1, 2


def table_key(partition: int, event: RawEvent) -> bytes:
    return f"{partition}|{event.model.partition_key}|{request_id_of(event)}".encode()


def partition_of(key: bytes) -> int:
    """The source partition a pending half came from: its table changelog partition too."""
    return int(key.split(b"|", 1)[0])


def encode_pending(event: RawEvent, received_at: float) -> bytes:
    return orjson.dumps(
        {
            "attributes": event.attributes,
            "data": base64.b64encode(event.data).decode(),
            "encoding": event.content_encoding,
            "received_at": received_at,
        }
    )


def decode_pending(blob: bytes) -> tuple[RawEvent, float]:
    fields = orjson.loads(blob)
    event = RawEvent(
        attributes=fields["attributes"],
        data=base64.b64decode(fields["data"]),
        content_encoding=fields["encoding"],
    )
    return event, float(fields["received_at"])


def _bit(half: Half) -> int:
    return REQUEST_BIT if half_of(half.event) == REQUEST else RESPONSE_BIT


def _paired(half: Half, other: Half) -> InferenceRecord:
    request, response = (half, other) if half_of(half.event) == REQUEST else (other, half)
    return InferenceRecord(
        request_id=request_id_of(half.event), model=half.event.model, request=request, response=response
    )


def _record(half: Half) -> InferenceRecord:
    alone_request = half_of(half.event) == REQUEST
    return InferenceRecord(
        request_id=request_id_of(half.event),
        model=half.event.model,
        request=half if alone_request else None,
        response=None if alone_request else half,
    )


class Pairer:
    """Offers halves to the pending table and takes back what pairs or times out."""

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        decode: Decoder,
        timeout_seconds: float,
        *,
        dedupe_seconds: float = 600.0,
        dedupe_max_keys: int = 500_000,
        on_duplicate: DuplicateHandler | None = None,
    ) -> None:
        self.table = table
        self.decode = decode
        self.timeout = timeout_seconds
        self.dedupe_seconds = dedupe_seconds
        self.dedupe_max_keys = dedupe_max_keys
        self.on_duplicate = on_duplicate
        # When each pending half arrived, so that expiry need not parse every value each tick;
        # rebuilt from the table after a restart.
        self._arrivals: dict[bytes, float] = {}
        # Inferences handed on, oldest first: when, and which halves (REQUEST_BIT | RESPONSE_BIT).
        self._handed_on: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def pair(self, halves: Sequence[tuple[int, Half]]) -> list[InferenceRecord]:
        """The records that the halves of one batch complete, in the order they completed.

        Halves that meet inside the batch pair without writing to the table, which spares two
        changelog writes per inference when (as usual) the response follows its request closely;
        only the halves still alone at the end of the batch are written to wait there.
        """
        records = []
        waiting: dict[bytes, Half] = {}
        for partition, half in halves:
            key = table_key(partition, half.event)
            if self._seen(key, half):
                self._duplicate(half)
                continue
            other = waiting.get(key)
            if other is not None:
                if half_of(other.event) == half_of(half.event):
                    self._duplicate(half)  # the first copy waits
                    continue
                del waiting[key]
                records.append(_paired(half, other))
                self._remember(key, REQUEST_BIT | RESPONSE_BIT, half.received_at)
                continue
            record = self._complete(key, half)
            if record is not None:
                records.append(record)
                self._remember(key, REQUEST_BIT | RESPONSE_BIT, half.received_at)
            elif key in self.table:
                self._duplicate(half)  # the same half already waits in the table
            else:
                waiting[key] = half
        for key, half in waiting.items():
            self.table[key] = encode_pending(half.event, half.received_at)
            self._arrivals[key] = half.received_at
        return records

    def _complete(self, key: bytes, half: Half) -> InferenceRecord | None:
        """The record that ``half`` completes with a half waiting in the table, if there is one."""
        stored = self.table.get(key)
        if stored is None:
            return None
        other_event, other_received_at = decode_pending(stored)
        if half_of(other_event) == half_of(half.event):
            return None
        del self.table[key]
        self._arrivals.pop(key, None)
        return _paired(
            half, Half(event=other_event, payload=self.decode(other_event), received_at=other_received_at)
        )

    def expire(self, now: float, partitions: Container[int]) -> list[InferenceRecord]:
        """Halves from ``partitions`` that waited longer than the timeout, each as a record alone."""
        records = []
        for key in list(self.table.keys()):
            if partition_of(key) not in partitions:
                continue
            arrived = self._arrivals.get(key)
            if arrived is None:
                arrived = self._arrivals[key] = decode_pending(self.table[key])[1]
            if now - arrived < self.timeout:
                continue
            event, received_at = decode_pending(self.table.pop(key))
            self._arrivals.pop(key, None)
            half = Half(event=event, payload=self.decode(event), received_at=received_at)
            records.append(_record(half))
            self._remember(key, _bit(half), now)
        self._forget_before(now - self.dedupe_seconds)
        return records

    def _seen(self, key: bytes, half: Half) -> bool:
        """Whether this half of this inference was handed on already."""
        handed_on = self._handed_on.get(key)
        return handed_on is not None and bool(handed_on[1] & _bit(half))

    def _duplicate(self, half: Half) -> None:
        if self.on_duplicate is not None:
            self.on_duplicate(half)

    def _remember(self, key: bytes, bits: int, when: float) -> None:
        if self.dedupe_max_keys == 0 or self.dedupe_seconds == 0:
            return
        earlier = self._handed_on.pop(key, None)
        self._handed_on[key] = (when, bits | (earlier[1] if earlier else 0))
        while len(self._handed_on) > self.dedupe_max_keys:
            self._handed_on.popitem(last=False)

    def _forget_before(self, cutoff: float) -> None:
        while self._handed_on:
            key, (when, _) = next(iter(self._handed_on.items()))
            if when >= cutoff:
                return
            del self._handed_on[key]
