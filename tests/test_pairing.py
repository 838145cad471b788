"""Pairing on its own: either order, copies, reused ids, timeouts, rollback (a dict as the state)."""

from __future__ import annotations

from infersight.records import Half, InferenceRecord, RawEvent
from infersight.streams.decode import decode_event
from infersight.streams.pairing import Pairer, decode_pending, encode_pending, pending_key

MODEL = b"ns/iris"


class DictState(dict[bytes, bytes]):
    """The engine's per-key state, in memory."""

    def get_bytes(self, key: bytes, default: None = None) -> bytes | None:
        return self.get(key, default)

    def set_bytes(self, key: bytes, value: bytes) -> None:
        self[key] = value

    def delete(self, key: bytes) -> None:
        self.pop(key, None)


def kserve(
    event_id: str, kind: str, body: bytes, time: str = "2026-12-01T10:00:00Z", **extra: str
) -> RawEvent:
    return RawEvent(
        attributes={
            "specversion": "1.0",
            "id": event_id,
            "source": "s",
            "type": f"org.kubeflow.serving.inference.{kind}",
            "namespace": "ns",
            "inferenceservicename": "iris",
            "endpoint": "",
            "time": time,
            "datacontenttype": "application/json",
            **extra,
        },
        data=body,
    )


def offer(pairer: Pairer, state: DictState, event: RawEvent, at: float) -> list[InferenceRecord]:
    records = pairer.offer(state, 0, MODEL, Half(event=event, payload=decode_event(event), received_at=at))
    pairer.commit(at)
    return records


REQUEST = b'{"instances": [[1.0, 2.0]]}'
RESPONSE = b'{"predictions": [1]}'


def test_either_order() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=30), DictState()
    assert offer(pairer, state, kserve("a", "request", REQUEST), 10.0) == []
    (record,) = offer(pairer, state, kserve("a", "response", RESPONSE), 11.0)
    assert record.mode == "paired" and record.request is not None and record.request.received_at == 10.0
    assert offer(pairer, state, kserve("b", "response", RESPONSE), 12.0) == []
    (record,) = offer(pairer, state, kserve("b", "request", REQUEST), 13.0)
    assert record.request is not None and record.request.payload.tensor("instances").array.shape == (1, 2)
    assert record.response is not None and record.response.payload.tensor("predictions").array.tolist() == [1]
    assert state == {} and len(pairer.index) == 0


def test_a_pending_half_is_kept_byte_for_byte() -> None:
    event = RawEvent(attributes={"id": "x", "type": "t"}, data=b"\x00\xff body", content_encoding="gzip")
    assert decode_pending(encode_pending(event, 12.5)) == (event, 12.5)


def test_copies_are_dropped_and_a_reused_id_is_a_new_inference() -> None:
    dropped: list[str] = []
    pairer = Pairer(
        decode_event, timeout_seconds=30, on_duplicate=lambda e: dropped.append(e.attributes["id"])
    )
    state = DictState()
    request = kserve("a", "request", REQUEST)
    assert offer(pairer, state, request, 1.0) == []
    assert offer(pairer, state, request, 2.0) == []  # a resend while it waits
    (first,) = offer(pairer, state, kserve("a", "response", RESPONSE), 3.0)
    assert first.request is not None and first.request.received_at == 1.0
    assert offer(pairer, state, request, 4.0) == []  # a resend after it went on
    assert dropped == ["a", "a"]
    # The client reuses the ce-id for its next inference: another time, another body.
    later = kserve("a", "request", b'{"instances": [[3.0, 4.0]]}', time="2026-12-01T10:05:00Z")
    assert offer(pairer, state, later, 5.0) == []
    (second,) = offer(pairer, state, kserve("a", "response", RESPONSE, time="2026-12-01T10:05:01Z"), 6.0)
    assert second.request is not None and second.request.event.data == later.data


def test_components_of_one_model_pair_apart() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=30), DictState()
    transformer = kserve("a", "request", REQUEST, component="transformer")
    predictor = kserve("a", "request", REQUEST, component="predictor")
    assert pending_key(transformer) != pending_key(predictor)
    assert offer(pairer, state, transformer, 1.0) == []
    assert offer(pairer, state, predictor, 1.0) == []
    (record,) = offer(pairer, state, kserve("a", "response", RESPONSE, component="predictor"), 2.0)
    assert record.request is not None and record.request.event.attributes["component"] == "predictor"
    assert list(state) == [pending_key(transformer)]


def test_timeout_emits_alone_and_a_new_worker_finds_what_waits() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=5), DictState()
    offer(pairer, state, kserve("a", "request", REQUEST), 100.0)
    offer(pairer, state, kserve("b", "response", RESPONSE), 103.0)
    assert pairer.due(104.0) == []
    ((partition, prefix, key),) = pairer.due(106.0)
    alone = pairer.expire(state, partition, prefix, key)
    assert alone is not None and alone.mode == "request" and alone.request_id == "a"
    pairer.commit(106.0)
    # A worker given the partition indexes the state it recovered.
    restarted = Pairer(decode_event, timeout_seconds=5)
    for blob in state.values():
        restarted.restore(0, MODEL, blob)
    ((_, _, key),) = restarted.due(109.0)
    other = restarted.expire(state, 0, MODEL, key)
    assert other is not None and other.mode == "response" and other.response is not None
    assert other.response.received_at == 103.0 and state == {}


def test_a_rolled_back_checkpoint_expires_and_pairs_again() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=5), DictState()
    offer(pairer, state, kserve("a", "request", REQUEST), 100.0)
    snapshot = DictState(state)
    ((partition, prefix, key),) = pairer.due(106.0)
    assert pairer.expire(state, partition, prefix, key) is not None
    # The sinks pushed back: the engine drops the checkpoint's state changes, we our memory.
    pairer.rollback()
    state = snapshot
    ((partition, prefix, key),) = pairer.due(107.0)
    assert pairer.expire(state, partition, prefix, key) is not None
    pairer.commit(107.0)
    assert pairer.due(200.0) == []


def test_the_memory_of_handed_on_inferences_is_bounded() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=5, dedupe_max_keys=3), DictState()
    for n in range(5):
        offer(pairer, state, kserve(str(n), "request", REQUEST), 1.0)
        offer(pairer, state, kserve(str(n), "response", RESPONSE), 1.0)
    # The three newest are remembered; the two oldest wait again as if new.
    for n in range(5):
        offer(pairer, state, kserve(str(n), "request", REQUEST), 2.0)
    assert sorted(key.split(b"|")[1] for key in state) == [b"0", b"1"]


def test_a_complete_index_spares_the_state_and_a_rolled_back_pair_waits_again() -> None:
    pairer, state = Pairer(decode_event, timeout_seconds=30), DictState()
    pairer.index.complete.add(0)
    request = kserve("a", "request", REQUEST)
    assert not pairer.index.holds(0, MODEL, pending_key(request))  # no look in the state needed
    offer(pairer, state, request, 1.0)
    assert pairer.index.holds(0, MODEL, pending_key(request))
    snapshot = DictState(state)
    response = kserve("a", "response", RESPONSE)
    half = Half(event=response, payload=decode_event(response), received_at=2.0)
    assert len(pairer.offer(state, 0, MODEL, half)) == 1
    # The checkpoint is dropped: the engine's state comes back as it was, and so does the index.
    pairer.rollback()
    state = snapshot
    (again,) = pairer.offer(state, 0, MODEL, half)
    assert again.mode == "paired" and state == {}
