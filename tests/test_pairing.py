"""Pairing on its own: either order, duplicates, timeouts, partitions (a dict stands in for the table)."""

from __future__ import annotations

from infersight.records import Payload, RawEvent
from infersight.streams.decode import decode_body
from infersight.streams.pairing import Pairer, partition_of, table_key


def decode(event: RawEvent) -> Payload:
    return decode_body(event.data, event.attributes.get("datacontenttype"), event.content_encoding)


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
    assert pairer.offer(2, kserve("a", "request", REQUEST), 10.0) is None
    record = pairer.offer(2, kserve("a", "response", RESPONSE), 11.0)
    assert record is not None and record.mode == "paired"
    assert record.request is not None and record.request.received_at == 10.0
    assert pairer.offer(1, kserve("b", "response", RESPONSE), 12.0) is None
    record = pairer.offer(1, kserve("b", "request", REQUEST), 13.0)
    assert record is not None and record.request_id == "b"
    assert record.request is not None and record.request.payload.tensor("instances").array.shape == (1, 2)
    assert record.response is not None and record.response.payload.tensor("predictions").array.tolist() == [1]
    assert pairer.table == {}


def test_duplicate_half_keeps_the_first() -> None:
    pairer = Pairer({}, decode, timeout_seconds=30)
    assert pairer.offer(0, kserve("a", "request", REQUEST), 1.0) is None
    assert pairer.offer(0, kserve("a", "request", REQUEST), 2.0) is None
    record = pairer.offer(0, kserve("a", "response", RESPONSE), 3.0)
    assert record is not None and record.request is not None and record.request.received_at == 1.0


def test_timeout_emits_alone_and_only_active_partitions() -> None:
    table: dict[bytes, bytes] = {}
    pairer = Pairer(table, decode, timeout_seconds=5)
    pairer.offer(0, kserve("a", "request", REQUEST), 100.0)
    pairer.offer(1, kserve("b", "response", RESPONSE), 100.0)
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
