"""Notice offsets the consumer skipped, so that they are read again instead of lost.

Around a rebalance faust can drop an event it fetched in the old generation without acking it,
then ack the events after it; its commit takes the highest run of acked offsets, so the dropped
one is committed past and never handled (seen as a request that never met its response). The
worker watches the offsets of each partition it reads, within one consumer generation, and seeks
back to the first one that did not arrive. What comes twice after that is dropped by pairing
and by the store's idempotent writes. A gap that is real (a transaction marker, a compacted
offset) costs one more read; once the same gap shows up a second time, its partition's holes are
taken as they come.
"""

from __future__ import annotations

from collections.abc import Iterable

from faust.types import TP


class OffsetGaps:
    """The next offset expected per partition; gaps found, each reported once."""

    def __init__(self) -> None:
        self._generation: int | None = None
        self._expected: dict[TP, int] = {}
        self._reported: set[tuple[TP, int]] = set()
        self._real_gaps: set[TP] = set()

    def check(self, generation: int, offsets: Iterable[tuple[TP, int]]) -> list[tuple[TP, int]]:
        """The first missing offset of each partition whose events in ``offsets`` left a hole."""
        if generation != self._generation:
            # A rebalance: the consumer sought back to the committed offsets, starting afresh.
            self._generation = generation
            self._expected.clear()
        gaps: dict[TP, int] = {}
        for tp, offset in offsets:
            expected = self._expected.get(tp)
            if expected is not None and offset > expected and tp not in gaps and tp not in self._real_gaps:
                if (tp, expected) in self._reported:
                    self._real_gaps.add(tp)  # read again, still missing: the topic has holes
                else:
                    self._reported.add((tp, expected))
                    gaps[tp] = expected
            if expected is None or offset >= expected:
                self._expected[tp] = offset + 1
        return list(gaps.items())
