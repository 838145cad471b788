"""Offsets the consumer passed over are noticed once per gap, per generation."""

from __future__ import annotations

from faust.types import TP

from infersight.streams.offsets import OffsetGaps

P0, P1 = TP("payloads", 0), TP("payloads", 1)


def test_contiguous_offsets_and_redeliveries_are_no_gap() -> None:
    gaps = OffsetGaps()
    assert gaps.check(1, [(P0, 5), (P1, 9), (P0, 6), (P1, 10)]) == []
    assert gaps.check(1, [(P0, 7), (P0, 3), (P0, 8)]) == []  # an older offset again: a redelivery


def test_a_skipped_offset_is_reported_once_and_reading_it_again_closes_it() -> None:
    gaps = OffsetGaps()
    gaps.check(1, [(P1, 20), (P1, 21), (P1, 22), (P1, 23), (P1, 24)])
    assert gaps.check(1, [(P1, 26), (P1, 27)]) == [(P1, 25)]
    # After the seek back: 25 comes, then 26 and 27 again.
    assert gaps.check(1, [(P1, 28), (P1, 25), (P1, 26), (P1, 27), (P1, 29)]) == []


def test_a_real_hole_is_sought_once_then_trusted() -> None:
    gaps = OffsetGaps()
    gaps.check(1, [(P0, 1)])
    assert gaps.check(1, [(P0, 3)]) == [(P0, 2)]  # a transaction marker at 2
    gaps.check(2, [(P0, 1)])  # read again from 1 (a new generation after a rebalance, say)
    assert gaps.check(2, [(P0, 3)]) == []  # 2 is missing again: a real hole
    assert gaps.check(2, [(P0, 5)]) == []  # and the partition is trusted from now on


def test_a_new_generation_starts_afresh() -> None:
    gaps = OffsetGaps()
    gaps.check(1, [(P0, 10)])
    assert gaps.check(2, [(P0, 4), (P0, 5)]) == []  # sought back to the committed offset
