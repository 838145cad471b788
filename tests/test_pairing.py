"""Pairing on its own: either order, duplicates, timeouts, partitions (a dict stands in for the table)."""

from __future__ import annotations

from infersight.records import Half, InferenceRecord, Payload, RawEvent
from infersight.streams.decode import decode_body
from infersight.streams.pairing import Pairer, partition_of, table_key


def decode(event: RawEvent) -> Payload:
    return decode_body(event.data, event.attributes.get("datacontenttype"), event.content_encoding)


def half(event: RawEvent, received_at: float) -> Half:
    return Half(event=event, payload=decode(event), received_at=received_at)


def offer(pairer: Pairer, partition: int, event: RawEvent, received_at: float) -> InferenceRecord | None:
    """One half as a batch of its own."""
    records = pairer.pair([(partition, half(event, received_at))])
    assert len(records) <= 1
    return records[0] if records else None


def kserve(event_id: str, kind: str, body: bytes) -> RawEvent:
    return RawEvent(
        attributes={
            "specversion": "1.0",
            "id": event_id,
            "source": "s",
            "type": f"org.kubeflow.serving.inference.{kind}",
            "namespace": "ns",
            "inferenceservicename": "iris",
            "endpoint": "default",
            "datacontenttype": "application/json",
        },
        data=body,
    )


REQUEST = b'{"instances": [[1.0, 2.0]]}'
RESPONSE = b'{"predictions": [1]}'


def test_either_order() -> None:
    pairer = Pairer({}, decode, timeout_seconds=30)
    assert offer(pairer, 2, kserve("a", "request", REQUEST), 10.0) is None
    record = offer(pairer, 2, kserve("a", "response", RESPONSE), 11.0)
    assert record is not None and record.mode == "paired"
    assert record.request is not None and record.request.received_at == 10.0
    assert offer(pairer, 1, kserve("b", "response", RESPONSE), 12.0) is None
    record = offer(pairer, 1, kserve("b", "request", REQUEST), 13.0)
    assert record is not None and record.request_id == "b"
    assert record.request is not None and record.request.payload.tensor("instances").array.shape == (1, 2)
    assert record.response is not None and record.response.payload.tensor("predictions").array.tolist() == [1]
    assert pairer.table == {}


def test_duplicate_half_keeps_the_first() -> None:
    pairer = Pairer({}, decode, timeout_seconds=30)
    assert offer(pairer, 0, kserve("a", "request", REQUEST), 1.0) is None
    assert offer(pairer, 0, kserve("a", "request", REQUEST), 2.0) is None
    record = offer(pairer, 0, kserve("a", "response", RESPONSE), 3.0)
    assert record is not None and record.request is not None and record.request.received_at == 1.0


def test_timeout_emits_alone_and_only_active_partitions() -> None:
    table: dict[bytes, bytes] = {}
    pairer = Pairer(table, decode, timeout_seconds=5)
    offer(pairer, 0, kserve("a", "request", REQUEST), 100.0)
    offer(pairer, 1, kserve("b", "response", RESPONSE), 100.0)
    assert pairer.expire(104.0, {0, 1}) == []
    (alone,) = pairer.expire(106.0, {0})
    assert alone.mode == "request" and alone.request_id == "a"
    # A fresh pairer over the same table (a restarted worker) still knows when "b" arrived.
    restarted = Pairer(table, decode, timeout_seconds=5)
    (other,) = restarted.expire(106.0, {1})
    assert other.mode == "response" and other.response is not None and other.response.received_at == 100.0
    assert table == {}


def test_key_carries_partition_and_model() -> None:
    key = table_key(7, kserve("x", "request", REQUEST))
    assert key == b"7|ns/iris|x"
    assert partition_of(key) == 7


def test_halves_that_meet_in_one_batch_never_touch_the_table() -> None:
    table: dict[bytes, bytes] = {}
    pairer = Pairer(table, decode, timeout_seconds=30)
    batch = [
        (0, half(kserve("a", "request", REQUEST), 1.0)),
        (1, half(kserve("b", "response", RESPONSE), 1.0)),
        (0, half(kserve("a", "request", REQUEST), 1.5)),
        (0, half(kserve("a", "response", RESPONSE), 2.0)),
        (0, half(kserve("c", "request", REQUEST), 2.0)),
    ]
    (record,) = pairer.pair(batch)
    assert record.request_id == "a" and record.mode == "paired"
    assert record.request is not None and record.request.received_at == 1.0
    assert set(table) == {b"1|ns/iris|b", b"0|ns/iris|c"}
    (later,) = pairer.pair([(1, half(kserve("b", "request", REQUEST), 3.0))])
    assert later.request_id == "b" and later.response is not None and later.response.received_at == 1.0
    assert set(table) == {b"0|ns/iris|c"}


def test_halves_coming_again_after_their_inference_was_handed_on_are_dropped() -> None:
    dropped: list[str] = []
    pairer = Pairer(
        {},
        decode,
        timeout_seconds=5,
        dedupe_seconds=60,
        on_duplicate=lambda h: dropped.append(h.event.attributes["id"]),
    )
    batch = [(0, half(kserve(name, kind, body), 1.0)) for name in "ab" for kind, body in PAIR]
    assert [record.request_id for record in pairer.pair(batch)] == ["a", "b"]
    # The whole batch again, as a producer's resend brings it: nothing comes out twice.
    assert pairer.pair(batch) == []
    assert dropped == ["a", "a", "b", "b"]
    # A half that went on alone is remembered alone: its late partner still goes on, a copy does not.
    assert offer(pairer, 0, kserve("c", "request", REQUEST), 2.0) is None
    (alone,) = pairer.expire(8.0, {0})
    assert alone.mode == "request"
    assert offer(pairer, 0, kserve("c", "request", REQUEST), 9.0) is None
    assert dropped[-1] == "c" and pairer.table == {}
    assert offer(pairer, 0, kserve("c", "response", RESPONSE), 9.0) is None  # it waits for a request
    # Past dedupe_seconds the memory is let go.
    pairer.expire(100.0, {0})
    assert offer(pairer, 0, kserve("a", "response", RESPONSE), 100.0) is None
    assert len(dropped) == 5


def test_the_memory_of_handed_on_inferences_is_bounded() -> None:
    pairer = Pairer({}, decode, timeout_seconds=5, dedupe_max_keys=3)
    batch = [(0, half(kserve(str(n), kind, body), 1.0)) for n in range(5) for kind, body in PAIR]
    assert len(pairer.pair(batch)) == 5
    assert len(pairer.pair(batch[-6:])) == 0
    assert [record.request_id for record in pairer.pair(batch[:4])] == ["0", "1"]


PAIR = (("request", REQUEST), ("response", RESPONSE))
