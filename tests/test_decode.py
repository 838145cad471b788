"""Decoding logged bodies: every protocol shape, the transport around them, and what is refused."""

from __future__ import annotations

import base64
import gzip
import json
import math
import struct
from typing import Any

import numpy as np
import pytest

from infersight.eventformat import BODY_ERROR
from infersight.records import Payload, RawEvent
from infersight.streams.decode import (
    UNDECODABLE_REASONS,
    DecodeError,
    Undecodable,
    decode_body,
    decode_event,
    header_length_of,
)

JSON = "application/json"

# Two 8x8 images in the style of scikit-learn's digits (a 0 and a 1, grey levels 0 to 16).
DIGIT_ZERO = [
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]
DIGIT_ONE = [
    [0, 0, 0, 12, 13, 5, 0, 0],
    [0, 0, 0, 11, 16, 9, 0, 0],
    [0, 0, 3, 15, 16, 6, 0, 0],
    [0, 7, 15, 16, 16, 2, 0, 0],
    [0, 0, 1, 16, 16, 3, 0, 0],
    [0, 0, 1, 16, 16, 6, 0, 0],
    [0, 0, 1, 16, 16, 6, 0, 0],
    [0, 0, 0, 11, 16, 10, 0, 0],
]


def decode(document: Any, content_type: str | None = JSON, content_encoding: str | None = None) -> Payload:
    return decode_body(json.dumps(document).encode(), content_type, content_encoding)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Open Inference Protocol v2


def test_v2_request_with_several_tensors_flat_and_nested() -> None:
    payload = decode(
        {
            "id": "42",
            "inputs": [
                {"name": "pixels", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4.5, 5, 6]},
                {
                    "name": "mask",
                    "shape": [2, 3],
                    "datatype": "BOOL",
                    "data": [[True, False, True], [False, True, False]],
                },
                {"name": "ids", "shape": [3], "datatype": "INT64", "data": [[7], [8], [9]]},
            ],
        }
    )
    assert payload.protocol == "oip-v2"
    assert [tensor.name for tensor in payload.tensors] == ["pixels", "mask", "ids"]
    pixels, mask, ids = (tensor.array for tensor in payload.tensors)
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels, [[1.0, 2.0, 3.0], [4.5, 5.0, 6.0]])
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, [[True, False, True], [False, True, False]])
    assert ids.dtype == np.int64
    assert ids.shape == (3,)
    np.testing.assert_array_equal(ids, [7, 8, 9])
    assert all(tensor.columns is None for tensor in payload.tensors)


def test_v2_nested_data_reshapes_to_the_declared_shape() -> None:
    """Nested data need not follow the shape: values are taken in row-major order."""
    payload = decode(
        {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "INT32", "data": [[1, 2, 3], [4, 5, 6]]}]}
    )
    np.testing.assert_array_equal(payload.tensor("x").array, [[1, 2], [3, 4], [5, 6]])


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("BOOL", [True, False], np.bool_),
        ("UINT8", [0, 255], np.uint8),
        ("UINT16", [0, 65535], np.uint16),
        ("UINT32", [0, 4294967295], np.uint32),
        ("UINT64", [0, 18446744073709551615], np.uint64),
        ("INT8", [-128, 127], np.int8),
        ("INT16", [-32768, 32767], np.int16),
        ("INT32", [-2147483648, 2147483647], np.int32),
        ("INT64", [-9223372036854775808, 9223372036854775807], np.int64),
        ("FP16", [0.5, -2], np.float16),
        ("FP32", [0.25, 3], np.float32),
        ("FP64", [0.1, -1e300], np.float64),
        ("BF16", [1.5, -0.0078125], np.float32),
    ],
)
def test_v2_numeric_datatypes(datatype: str, data: list[Any], dtype: type[np.generic]) -> None:
    payload = decode({"inputs": [{"name": "t", "shape": [1, 2], "datatype": datatype, "data": data}]})
    array = payload.tensor("t").array
    assert array.dtype == dtype
    assert array.shape == (1, 2)
    assert array.tolist() == [data]


def test_v2_fp16_rounds_to_half_precision() -> None:
    payload = decode(
        {"outputs": [{"name": "p", "shape": [3], "datatype": "FP16", "data": [0.1, 65504, 1e6]}]}
    )
    array = payload.tensor("p").array
    assert array.dtype == np.float16
    assert array[0] == np.float16(0.1)
    assert array[1] == 65504
    assert np.isinf(array[2])


def test_v2_bf16_is_float32() -> None:
    payload = decode({"outputs": [{"name": "logits", "shape": [2], "datatype": "BF16", "data": [0.1, 2.0]}]})
    array = payload.tensor("logits").array
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, np.array([0.1, 2.0], dtype=np.float32))


def test_v2_bytes_are_utf8_encoded_objects() -> None:
    payload = decode(
        {"inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": ["hello", "café ☕"]}]}
    )
    array = payload.tensor("text").array
    assert array.dtype == object
    assert array.shape == (2, 1)
    assert array.tolist() == [[b"hello"], ["café ☕".encode()]]


def test_v2_response_and_empty_tensor() -> None:
    payload = decode(
        {
            "model_name": "iris",
            "model_version": "1",
            "id": "823248cc-d770-4a51-9606-16803395569c",
            "outputs": [
                {"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 2]},
                {"name": "none", "shape": [0, 4], "datatype": "INT32", "data": []},
            ],
        }
    )
    assert payload.protocol == "oip-v2"
    assert payload.tensor("predict").array.tolist() == [1, 2]
    empty = payload.tensor("none").array
    assert empty.shape == (0, 4)
    assert empty.dtype == np.int32


def test_v2_request_outputs_naming_wanted_outputs_are_not_tensors() -> None:
    payload = decode(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}],
        }
    )
    assert [tensor.name for tensor in payload.tensors] == ["x"]


def test_v2_digits_image_request() -> None:
    """An OIP v2 request as a digits classifier receives it: a batch of two 8x8 grey images."""
    pixels = [float(value) for image in (DIGIT_ZERO, DIGIT_ONE) for row in image for value in row]
    payload = decode(
        {
            "id": "digits-1",
            "parameters": {"content_type": "np"},
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 8, 8],
                    "datatype": "FP32",
                    "parameters": {"content_type": "np"},
                    "data": pixels,
                }
            ],
        }
    )
    assert payload.protocol == "oip-v2"
    (image,) = payload.tensors
    assert image.name == "input-0"
    assert image.array.dtype == np.float32
    assert image.array.shape == (2, 8, 8)
    np.testing.assert_array_equal(image.array[0], DIGIT_ZERO)
    np.testing.assert_array_equal(image.array[1], DIGIT_ONE)
    assert image.array[1, 3, 1] == 7
    assert image.array.max() == 16


def test_v2_nan_and_infinity() -> None:
    body = (
        b'{"outputs": [{"name": "y", "shape": [3], "datatype": "FP32", "data": [NaN, Infinity, -Infinity]}]}'
    )
    array = decode_body(body, JSON, None).tensor("y").array
    assert array.dtype == np.float32
    assert np.isnan(array[0])
    assert array[1] == np.inf
    assert array[2] == -np.inf


# Open Inference Protocol v2, binary data extension
#
# Bodies are built as KServe's and Triton's clients write them: the JSON header, then each binary
# tensor's bytes in the order of the header (little-endian; BYTES as 4-byte length + bytes).


def binary_bytes(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def binary_body(
    key: str, tensors: list[tuple[dict[str, Any], bytes | None]], **extra: Any
) -> tuple[bytes, int]:
    """The body and its ``Inference-Header-Content-Length`` for tensors given as (entry, raw bytes)."""
    entries = []
    for entry, raw in tensors:
        if raw is not None:
            entry = {**entry, "parameters": {**entry.get("parameters", {}), "binary_data_size": len(raw)}}
        entries.append(entry)
    header = json.dumps({**extra, key: entries}).encode()
    return header + b"".join(raw for _, raw in tensors if raw is not None), len(header)


PIXELS = np.array([[0.5, -1.25, 3.0], [1e-3, 65504.0, -0.0]], dtype=np.float32)
IDS = np.array([7, -2, 2**40], dtype=np.int64)
WORDS = [b"hello", "café ☕".encode(), b""]


def mixed_request() -> tuple[bytes, int]:
    """A v2 request with FP32, INT64 and BYTES inputs, all in binary."""
    return binary_body(
        "inputs",
        [
            ({"name": "pixels", "shape": [2, 3], "datatype": "FP32"}, PIXELS.astype("<f4").tobytes()),
            ({"name": "ids", "shape": [3], "datatype": "INT64"}, IDS.astype("<i8").tobytes()),
            ({"name": "words", "shape": [3, 1], "datatype": "BYTES"}, binary_bytes(*WORDS)),
        ],
        id="bin-1",
        parameters={"binary_data_output": True},
    )


def assert_mixed_request(payload: Payload) -> None:
    assert payload.protocol == "oip-v2"
    assert [tensor.name for tensor in payload.tensors] == ["pixels", "ids", "words"]
    pixels, ids, words = (tensor.array for tensor in payload.tensors)
    assert pixels.dtype == np.float32
    assert pixels.shape == (2, 3)
    np.testing.assert_array_equal(pixels, PIXELS)
    assert ids.dtype == np.int64
    assert ids.tolist() == IDS.tolist()
    assert words.dtype == object
    assert words.shape == (3, 1)
    assert words.tolist() == [[word] for word in WORDS]


@pytest.mark.parametrize("content_type", ["application/octet-stream", JSON, None])
def test_v2_binary_request_without_header_length(content_type: str | None) -> None:
    """What the KServe agent logs: the body as sent, without Inference-Header-Content-Length."""
    body, _ = mixed_request()
    assert_mixed_request(decode_body(body, content_type, None))


def test_v2_binary_request_with_its_header_length() -> None:
    body, length = mixed_request()
    assert_mixed_request(decode_body(body, "application/octet-stream", None, length))


def test_v2_binary_arrays_are_writable_native_copies() -> None:
    body, _ = mixed_request()
    ids = decode_body(body, None, None).tensor("ids").array
    assert ids.flags.writeable
    assert ids.dtype.isnative
    ids[0] = 1


# Binary whose bytes hold braces, quotes and backslashes, so that nothing may read it as JSON.
BRACES = b'}}"{\\"}'


def braces_request() -> tuple[bytes, int]:
    curly = int.from_bytes(b"}" * 8, "little")
    return binary_body(
        "inputs",
        [
            ({"name": "text", "shape": [2], "datatype": "BYTES"}, binary_bytes(BRACES, b"}")),
            ({"name": "curly", "shape": [1], "datatype": "INT64"}, struct.pack("<q", curly)),
            ({"name": "scores", "shape": [2], "datatype": "FP32"}, struct.pack("<2f", 1.5, 2.0)),
        ],
        id='quote " and } inside the header',
    )


@pytest.mark.parametrize("offset", [None, 0, -3, -1, 1, 5, 10_000])
def test_v2_binary_holding_braces_with_wrong_or_absent_length(offset: int | None) -> None:
    """No length, the right one, one ending inside the JSON or inside the binary, one past the body."""
    body, length = braces_request()
    assert body.count(b"}") > 10
    header_length = None if offset is None else length + offset
    payload = decode_body(body, "application/octet-stream", None, header_length)
    assert payload.tensor("text").array.tolist() == [BRACES, b"}"]
    assert payload.tensor("curly").array.tolist() == [int.from_bytes(b"}" * 8, "little")]
    assert payload.tensor("scores").array.tolist() == [1.5, 2.0]


def test_v2_binary_after_whitespace_counted_in_the_header_length() -> None:
    """A header length may count whitespace after the JSON; binary may itself start with whitespace bytes."""
    spaced = binary_body("inputs", [({"name": "x", "shape": [2], "datatype": "INT8"}, bytes([32, 10]))])[0]
    header, raw = spaced[:-2], spaced[-2:]
    body = header + b" \n" + raw
    for header_length in (len(header) + 2, len(header), None):
        payload = decode_body(body, JSON, None, header_length)
        assert payload.tensor("x").array.tolist() == [32, 10]
    # Whitespace bytes that are all the binary data: the whole body even parses as JSON.
    assert decode_body(spaced, JSON, None).tensor("x").array.tolist() == [32, 10]


def test_v2_binary_and_json_tensors_together() -> None:
    """Only tensors with binary_data_size take bytes; the others keep their JSON data."""
    body, _ = binary_body(
        "outputs",
        [
            ({"name": "label", "shape": [2], "datatype": "INT32", "data": [3, 1]}, None),
            ({"name": "probs", "shape": [2, 2], "datatype": "FP64"}, struct.pack("<4d", 0.9, 0.1, 0.2, 0.8)),
            ({"name": "ok", "shape": [2], "datatype": "BOOL"}, bytes([1, 0])),
        ],
        model_name="iris",
    )
    payload = decode_body(body, JSON, None)
    assert payload.tensor("label").array.tolist() == [3, 1]
    assert payload.tensor("probs").array.tolist() == [[0.9, 0.1], [0.2, 0.8]]
    assert payload.tensor("ok").array.tolist() == [True, False]


@pytest.mark.parametrize(
    ("datatype", "raw", "expected", "dtype"),
    [
        ("UINT16", struct.pack("<2H", 1, 65535), [1, 65535], np.uint16),
        ("INT32", struct.pack("<2i", -5, 2**31 - 1), [-5, 2**31 - 1], np.int32),
        ("UINT64", struct.pack("<2Q", 0, 2**64 - 1), [0, 2**64 - 1], np.uint64),
        ("FP16", np.array([0.5, -2.0], dtype="<f2").tobytes(), [0.5, -2.0], np.float16),
        ("BF16", struct.pack("<2H", 0x3FC0, 0xBC00), [1.5, -0.0078125], np.float32),
    ],
)
def test_v2_binary_datatypes(datatype: str, raw: bytes, expected: list[Any], dtype: type[np.generic]) -> None:
    body, _ = binary_body("outputs", [({"name": "t", "shape": [2], "datatype": datatype}, raw)])
    array = decode_body(body, None, None).tensor("t").array
    assert array.dtype == dtype
    assert array.tolist() == expected


def test_v2_binary_gzip_body() -> None:
    body, _ = mixed_request()
    assert_mixed_request(decode_body(gzip.compress(body), "application/octet-stream", "gzip"))


def test_v2_binary_header_length_from_the_event() -> None:
    """Loggers that keep the length pass it as an attribute, or as Triton's content type parameter."""
    body, length = braces_request()
    for attributes, expected in (
        ({"inferenceheadercontentlength": str(length)}, length),
        ({"Inference-Header-Content-Length": str(length)}, length),
        ({"inferenceheadercontentlength": str(length - 4)}, length - 4),  # wrong: ignored
        ({"inferenceheadercontentlength": "not a number"}, None),
        ({}, None),
    ):
        event = RawEvent(attributes={**attributes, "datacontenttype": "application/octet-stream"}, data=body)
        assert header_length_of(event.attributes) == expected
        assert decode_event(event).tensor("text").array.tolist() == [BRACES, b"}"]
    triton = f"application/vnd.sagemaker-triton.binary+json;json-header-size={length}"
    assert decode_body(body, triton, None).tensor("curly").array.shape == (1,)


def test_v2_binary_truncated_is_refused() -> None:
    body, length = mixed_request()
    assert len(body) - length == 24 + 24 + (4 + 5) + (4 + 9) + 4  # 6 FP32, 3 INT64, 3 BYTES
    for header_length in (None, length):
        with pytest.raises(
            DecodeError,
            match=r"binary tensor data is truncated: the tensors declare 74 bytes \(binary_data_size\), "
            r"the body has 73 after the JSON header",
        ):
            decode_body(body[:-1], "application/octet-stream", None, header_length)


def test_v2_binary_with_bytes_no_tensor_declares_is_refused() -> None:
    body, _ = mixed_request()
    with pytest.raises(DecodeError, match="more than the 74 bytes of binary tensor data"):
        decode_body(body + b"\x00\x01", "application/octet-stream", None)


@pytest.mark.parametrize(
    ("entry", "raw", "message"),
    [
        ({"name": "x", "shape": [2], "datatype": "FP32"}, b"\x00" * 7, "7 bytes of FP32 data is not a whole"),
        (
            {"name": "x", "shape": [3], "datatype": "FP32"},
            b"\x00" * 8,
            r"shape \[3\] needs 3 values, data has 2",
        ),
        ({"name": "x", "shape": [1], "datatype": "BOOL"}, b"\x02", "BOOL data must be bytes 0 or 1"),
        (
            {"name": "x", "shape": [1], "datatype": "BYTES"},
            b"\x05\x00\x00\x00ab",
            "element 0 needs 5 bytes, 2",
        ),
        ({"name": "x", "shape": [2], "datatype": "BYTES"}, b"\x00\x00\x00\x00\x01", "ends inside the length"),
        (
            {"name": "x", "shape": [1], "datatype": "INT8", "data": [1]},
            b"\x01",
            "both data and binary_data_size",
        ),
        ({"name": "x", "shape": [1], "datatype": "FLOAT"}, b"\x01", "unknown datatype 'FLOAT'"),
    ],
)
def test_v2_broken_binary_tensors_are_refused(entry: dict[str, Any], raw: bytes, message: str) -> None:
    body, _ = binary_body("inputs", [(entry, raw)])
    with pytest.raises(DecodeError, match=message):
        decode_body(body, "application/octet-stream", None)


def test_v2_bad_binary_data_size_is_refused() -> None:
    header = {
        "inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "parameters": {"binary_data_size": -1}}]
    }
    with pytest.raises(DecodeError, match="binary_data_size must be a non-negative integer, not -1"):
        decode_body(json.dumps(header).encode() + b"\x01", "application/octet-stream", None)


def test_json_followed_by_bytes_without_binary_tensors_is_as_before() -> None:
    """Trailing bytes after JSON that declares no binary data: broken JSON, or raw when not JSON."""
    body = b'{"instances": [[1, 2]]}\x00\x01}'
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode_body(body, JSON, None, 23)
    assert decode_body(body, "application/octet-stream", None, 23) == Payload("raw")


# KServe / TF-Serving v1


def test_kserve_sklearn_iris_request_and_response() -> None:
    """The pair KServe's sklearn iris example logs."""
    request = decode({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})
    assert request.protocol == "kserve-v1"
    (instances,) = request.tensors
    assert instances.name == "instances"
    assert instances.array.dtype == np.float64
    assert instances.array.shape == (2, 4)
    np.testing.assert_array_equal(instances.array, [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]])

    response = decode({"predictions": [1, 1]})
    assert response.protocol == "kserve-v1"
    (predictions,) = response.tensors
    assert predictions.name == "predictions"
    assert predictions.array.dtype == np.int64
    assert predictions.array.tolist() == [1, 1]


def test_v1_integers_give_int64_and_mixed_numbers_float64() -> None:
    assert decode({"instances": [[1, 2], [3, 4]]}).tensor("instances").array.dtype == np.int64
    mixed = decode({"instances": [[1, 2.5], [3, 4]]}).tensor("instances").array
    assert mixed.dtype == np.float64
    np.testing.assert_array_equal(mixed, [[1.0, 2.5], [3.0, 4.0]])


def test_v1_scalar_instances() -> None:
    array = decode({"instances": [0.5, 1, 2]}).tensor("instances").array
    assert array.shape == (3,)
    assert array.dtype == np.float64


def test_v1_dict_instances_give_one_tensor_per_feature() -> None:
    payload = decode(
        {
            "instances": [
                {"age": 39, "income": 52000.5, "embedding": [0.1, 0.2]},
                {"age": 52, "income": 61000, "embedding": [0.3, 0.4]},
                {"age": 28, "income": 38000, "embedding": [0.5, 0.6]},
            ]
        }
    )
    assert payload.protocol == "kserve-v1"
    assert [tensor.name for tensor in payload.tensors] == ["age", "income", "embedding"]
    age, income, embedding = (tensor.array for tensor in payload.tensors)
    assert age.dtype == np.int64
    assert age.tolist() == [39, 52, 28]
    assert income.dtype == np.float64
    assert income.tolist() == [52000.5, 61000.0, 38000.0]
    assert embedding.shape == (3, 2)
    np.testing.assert_array_equal(embedding[:, 1], [0.2, 0.4, 0.6])


def test_v1_b64_values_inside_instances_are_bytes() -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    payload = decode({"instances": [{"image_bytes": {"b64": b64(jpeg)}, "key": "1"}]})
    image, key = payload.tensors
    assert image.name == "image_bytes"
    assert image.array.dtype == object
    assert image.array.tolist() == [jpeg]
    assert key.name == "key"
    assert key.array.dtype == object
    assert key.array.tolist() == ["1"]


def test_v1_b64_instances_are_one_tensor_of_bytes() -> None:
    images = [b"\x89PNG\r\n\x1a\n\x00\x00", b"\x00"]
    payload = decode({"instances": [{"b64": b64(image)} for image in images]})
    (instances,) = payload.tensors
    assert instances.name == "instances"
    assert instances.array.dtype == object
    assert instances.array.tolist() == images  # trailing zero bytes kept


def test_v1_columnar_inputs_dict() -> None:
    payload = decode(
        {"signature_name": "serving_default", "inputs": {"x": [[1, 2], [3, 4]], "y": [0.5, 1.5]}}
    )
    assert payload.protocol == "kserve-v1"
    assert [tensor.name for tensor in payload.tensors] == ["x", "y"]
    assert payload.tensor("x").array.shape == (2, 2)
    assert payload.tensor("x").array.dtype == np.int64
    assert payload.tensor("y").array.tolist() == [0.5, 1.5]


def test_v1_columnar_inputs_list() -> None:
    (inputs,) = decode({"inputs": [[1.0, 2.0, 3.0]]}).tensors
    assert inputs.name == "inputs"
    assert inputs.array.shape == (1, 3)
    assert inputs.array.dtype == np.float64


def test_v1_text_stays_python_strings() -> None:
    (instances,) = decode({"instances": ["I loved this movie", "a 2nd review"]}).tensors
    assert instances.array.dtype == object
    assert instances.array.tolist() == ["I loved this movie", "a 2nd review"]


def test_v1_scalar_inputs_are_a_0d_tensor() -> None:
    (inputs,) = decode({"inputs": "Translate this sentence"}).tensors
    assert inputs.name == "inputs"
    assert inputs.array.shape == ()
    assert inputs.array.item() == "Translate this sentence"


def test_v1_integers_too_large_for_int64_become_float64() -> None:
    array = decode({"instances": [[2**70, 1]]}).tensor("instances").array
    assert array.dtype == np.float64
    assert array.tolist() == [[float(2**70), 1.0]]


def test_v1_null_among_numbers_is_nan() -> None:
    array = decode({"instances": [[1, None], [3, 4]]}).tensor("instances").array
    assert array.dtype == np.float64
    assert np.isnan(array[0, 1])
    assert array[1].tolist() == [3.0, 4.0]


def test_v1_predictions_of_numbers_and_lists() -> None:
    (predictions,) = decode({"predictions": [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]}).tensors
    assert predictions.name == "predictions"
    assert predictions.array.shape == (2, 3)
    assert predictions.array.dtype == np.float64


def test_v1_predictions_of_dicts_give_one_tensor_per_key() -> None:
    payload = decode(
        {
            "predictions": [
                {"label": "cat", "scores": [0.9, 0.1], "class_id": 0},
                {"label": "dog", "scores": [0.2, 0.8], "class_id": 1},
            ]
        }
    )
    assert payload.protocol == "kserve-v1"
    assert [tensor.name for tensor in payload.tensors] == ["label", "scores", "class_id"]
    assert payload.tensor("label").array.tolist() == ["cat", "dog"]
    assert payload.tensor("scores").array.shape == (2, 2)
    assert payload.tensor("class_id").array.dtype == np.int64


def test_v1_columnar_outputs() -> None:
    payload = decode({"outputs": {"scores": [[0.1, 0.9]], "classes": [[3, 7]]}})
    assert payload.protocol == "kserve-v1"
    assert payload.tensor("scores").array.dtype == np.float64
    assert payload.tensor("classes").array.tolist() == [[3, 7]]


def test_v1_nan_and_infinity() -> None:
    array = (
        decode_body(b'{"predictions": [NaN, Infinity, -Infinity, 1]}', JSON, None).tensor("predictions").array
    )
    assert array.dtype == np.float64
    assert np.isnan(array[0])
    assert array[1:].tolist() == [math.inf, -math.inf, 1.0]


# Seldon


def test_seldon_ndarray_with_names() -> None:
    payload = decode(
        {
            "meta": {"puid": "abc", "tags": {}, "routing": {}},
            "data": {"names": ["t:0", "t:1", "t:2"], "ndarray": [[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]]},
        }
    )
    assert payload.protocol == "seldon"
    (tensor,) = payload.tensors
    assert tensor.name == "ndarray"
    assert tensor.columns == ("t:0", "t:1", "t:2")
    assert tensor.array.dtype == np.float64
    assert tensor.array.shape == (2, 3)


def test_seldon_ndarray_without_names() -> None:
    for data in ({"ndarray": [[1, 2]]}, {"names": [], "ndarray": [[1, 2]]}):
        (tensor,) = decode({"data": data}).tensors
        assert tensor.columns is None
        assert tensor.array.dtype == np.int64


def test_seldon_tensor_is_reshaped() -> None:
    payload = decode(
        {"data": {"names": ["a", "b"], "tensor": {"shape": [3, 2], "values": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}}}
    )
    (tensor,) = payload.tensors
    assert tensor.name == "tensor"
    assert tensor.columns == ("a", "b")
    assert tensor.array.shape == (3, 2)
    np.testing.assert_array_equal(tensor.array[:, 0], [1.0, 3.0, 5.0])


def test_seldon_json_data_keeps_the_json_text() -> None:
    (tensor,) = decode({"jsonData": {"text": "héllo", "n": [1, 2]}}).tensors
    assert tensor.name == "jsonData"
    assert tensor.array.shape == ()
    assert tensor.array.dtype == object
    assert json.loads(tensor.array.item()) == {"text": "héllo", "n": [1, 2]}


def test_seldon_str_data() -> None:
    payload = decode({"meta": {}, "strData": "The movie was great"})
    assert payload.protocol == "seldon"
    (tensor,) = payload.tensors
    assert tensor.name == "strData"
    assert tensor.array.shape == ()
    assert tensor.array.dtype == object
    assert tensor.array[()] == "The movie was great"


def test_seldon_bin_data() -> None:
    blob = bytes(range(256))
    (tensor,) = decode({"binData": b64(blob)}).tensors
    assert tensor.name == "binData"
    assert tensor.array.shape == ()
    assert tensor.array[()] == blob


# Transport: gzip, content types, JSON variants


def test_gzip_declared() -> None:
    body = gzip.compress(json.dumps({"instances": [[1, 2]]}).encode())
    payload = decode_body(body, JSON, "gzip")
    assert payload.protocol == "kserve-v1"
    assert payload.tensor("instances").array.tolist() == [[1, 2]]


def test_gzip_recognised_by_magic_bytes_without_header() -> None:
    body = gzip.compress(b'{"data": {"ndarray": [[1.5]]}}')
    payload = decode_body(body, JSON, None)
    assert payload.protocol == "seldon"
    assert payload.tensor("ndarray").array.tolist() == [[1.5]]


def test_empty_body_is_raw() -> None:
    assert decode_body(b"", JSON, None) == Payload("raw")
    assert decode_body(b"", None, None) == Payload("raw")
    assert decode_body(gzip.compress(b""), JSON, "gzip") == Payload("raw")


@pytest.mark.parametrize(
    "document",
    [
        {"message": "hello", "values": [1, 2]},
        [1, 2, 3],
        "just a string",
        42,
        None,
        {"data": [1, 2, 3]},
        {"data": {"rows": 3}},
        {"instances": None},
    ],
)
def test_json_of_no_known_shape_is_raw(document: Any) -> None:
    assert decode(document) == Payload("raw")


def test_non_json_content_types_with_non_json_bodies_are_raw() -> None:
    assert decode_body(b"\x00\x01binary", "application/octet-stream", None) == Payload("raw")
    assert decode_body(b"plain words", "text/plain; charset=utf-8", None) == Payload("raw")
    # Binary that merely starts with the gzip magic bytes.
    assert decode_body(b"\x1f\x8b not gzip", "application/octet-stream", None) == Payload("raw")


def test_json_body_is_decoded_whatever_the_content_type() -> None:
    payload = decode_body(b'{"instances": [[1]]}', "text/plain", None)
    assert payload.protocol == "kserve-v1"


def test_content_type_parameters_and_identity_encoding() -> None:
    payload = decode_body(b'{"predictions": [0]}', "application/json; charset=utf-8", "identity")
    assert payload.tensor("predictions").array.tolist() == [0]


# Refusals


def test_bad_gzip_is_refused() -> None:
    with pytest.raises(DecodeError, match="not valid gzip") as error:
        decode_body(b"this is not gzip", JSON, "gzip")
    assert error.value.reason == "invalid_gzip"


def test_truncated_gzip_is_refused() -> None:
    body = gzip.compress(json.dumps({"instances": list(range(1000))}).encode())
    with pytest.raises(DecodeError, match="not valid gzip") as error:
        decode_body(body[: len(body) // 2], JSON, None)
    assert error.value.reason == "invalid_gzip"


def test_unsupported_content_encoding_is_refused() -> None:
    with pytest.raises(DecodeError, match="'br' is not supported") as error:
        decode_body(b"{}", JSON, "br")
    assert error.value.reason == "unsupported_encoding"


@pytest.mark.parametrize("content_type", [JSON, "application/cloudevents+json", None])
def test_bad_json_is_refused(content_type: str | None) -> None:
    with pytest.raises(DecodeError, match="not valid JSON") as error:
        decode_body(b'{"instances": [[1, 2]', content_type, None)
    assert error.value.reason == "invalid_json"


def test_v2_shape_mismatch_names_the_tensor() -> None:
    with pytest.raises(
        DecodeError, match=r"tensor 'pixels': shape \[2, 8, 8\] needs 128 values, data has 127"
    ):
        decode({"inputs": [{"name": "pixels", "shape": [2, 8, 8], "datatype": "FP32", "data": [0.0] * 127}]})


def test_v2_unknown_datatype() -> None:
    with pytest.raises(DecodeError, match="tensor 'x': unknown datatype 'FLOAT32'"):
        decode({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT32", "data": [1.0]}]})


def test_v2_binary_header_without_its_bytes_is_truncated() -> None:
    with pytest.raises(DecodeError, match="binary tensor data is truncated: the tensors declare 4000 bytes"):
        decode(
            {
                "model_name": "densenet",
                "outputs": [
                    {
                        "name": "fc6",
                        "shape": [1, 1000],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 4000},
                    }
                ],
            }
        )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "shape": [1], "datatype": "INT8"}, "tensor 'x' has no data"),
        ({"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 128]}, r"must lie in \[-128, 127\]"),
        ({"name": "x", "shape": [1], "datatype": "UINT8", "data": [-1]}, r"must lie in \[0, 255\]"),
        ({"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}, "INT32 data must be integers"),
        ({"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}, "BOOL data must be true or false"),
        ({"name": "x", "shape": [1], "datatype": "FP32", "data": ["1.0"]}, "FP32 data must be numbers"),
        ({"name": "x", "shape": [1], "datatype": "FP32", "data": [None]}, "FP32 data must be numbers"),
        ({"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}, "BYTES data must be strings"),
        (
            {"name": "x", "shape": [-1], "datatype": "FP32", "data": [1.0]},
            "shape must be a list of non-negative",
        ),
        ({"name": "x", "datatype": "FP32", "data": [1.0]}, "shape must be a list of non-negative"),
        ({"name": 3, "shape": [1], "datatype": "FP32", "data": [1.0]}, "tensor name must be a string"),
    ],
)
def test_v2_invalid_tensors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode({"inputs": [entry]})


def test_v1_ragged_instances_are_refused() -> None:
    with pytest.raises(DecodeError, match="'instances' is ragged"):
        decode({"instances": [[1, 2, 3], [4, 5]]})


def test_v1_dict_instance_missing_a_key_is_refused() -> None:
    with pytest.raises(
        DecodeError, match=r"instances\[1\] does not have the keys of instances\[0\]: missing \['b'\]"
    ):
        decode({"instances": [{"a": 1, "b": 2.5}, {"a": 2}]})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"instances": [{"b64": "not base64!"}]}, "b64 is not valid base64"),
        ({"instances": [{"b64": 5}]}, "b64 must be a base64 string"),
        ({"instances": [[{"x": 1}]]}, "holds JSON objects"),
        ({"instances": [{"a": {"nested": 1}}]}, "holds JSON objects"),
        ({"binData": "%%%"}, "binData is not valid base64"),
        ({"strData": 5}, "strData must be a string"),
        ({"data": {"tftensor": {"dtype": "DT_FLOAT"}}}, "tftensor is not supported"),
        ({"data": {"tensor": [1, 2]}}, "data.tensor must be an object"),
        ({"data": {"names": "a", "ndarray": [[1]]}}, "data.names must be a list of strings"),
    ],
)
def test_broken_v1_and_seldon_bodies_are_refused(document: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message) as error:
        decode(document)
    assert error.value.reason == "invalid_tensor"


def test_seldon_names_length_mismatch_is_refused() -> None:
    with pytest.raises(DecodeError, match=r"data\.names has 2 names for 3 columns"):
        decode({"data": {"names": ["a", "b"], "ndarray": [[1, 2, 3]]}})


def test_seldon_tensor_shape_mismatch_is_refused() -> None:
    with pytest.raises(DecodeError, match=r"data.tensor: shape \[2, 2\] needs 4 values, data has 3"):
        decode({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}})


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


# What the worker does with a body that does not decode: keeps it raw


def event_with(body: bytes, content_encoding: str | None = None, **attributes: str) -> RawEvent:
    base = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "datacontenttype": JSON}
    return RawEvent(attributes={**base, **attributes}, data=body, content_encoding=content_encoding)


@pytest.mark.parametrize(
    ("event", "reason", "detail"),
    [
        (event_with(b'{"instances": [[1, 2]'), "invalid_json", "not valid JSON"),
        (event_with(b"\xff\xfe"), "invalid_json", "not valid JSON"),
        (event_with(b"this is not gzip", "gzip"), "invalid_gzip", "not valid gzip"),
        (event_with(gzip.compress(b"{}")[:-4]), "invalid_gzip", "not valid gzip"),
        (event_with(b"{}", "br"), "unsupported_encoding", "'br' is not supported"),
        (event_with(b'{"instances": [[1, 2, 3], [4, 5]]}'), "invalid_tensor", "ragged"),
        (event_with(b"{not json", **{BODY_ERROR: "body is not valid JSON: x"}), "marked_by_ingest", "JSON"),
        (
            event_with(b"not gzip", "gzip", **{BODY_ERROR: "body is not valid gzip"}),
            "marked_by_ingest",
            "gzip",
        ),
    ],
)
def test_decode_event_keeps_an_undecodable_body_raw_with_its_reason(
    event: RawEvent, reason: str, detail: str
) -> None:
    payload = decode_event(event)
    assert isinstance(payload, Undecodable)
    assert (payload.protocol, payload.tensors) == ("raw", ())
    assert payload.reason == reason and reason in UNDECODABLE_REASONS
    assert detail in payload.detail
    assert decode_event(event) == payload  # the same answer when pairing decodes it again


def test_a_marked_body_that_decodes_is_decoded() -> None:
    event = event_with(b'{"predictions": [1]}', **{BODY_ERROR: "forged upstream"})
    payload = decode_event(event)
    assert not isinstance(payload, Undecodable)
    assert payload.tensor("predictions").array.tolist() == [1]


def test_raw_of_no_known_shape_is_not_undecodable() -> None:
    assert type(decode_event(event_with(b'{"hello": "world"}'))) is Payload
    assert type(decode_event(event_with(b"\x00\x01", datacontenttype="application/octet-stream"))) is Payload


def test_a_header_length_of_thousands_of_digits_is_no_length() -> None:
    """int() refuses more than 4300 digits; the hint is ignored instead of stopping the worker."""
    assert header_length_of({"inferenceheadercontentlength": "9" * 5000}) is None
    event = event_with(b"\x00 not json", datacontenttype="application/octet-stream")
    event.attributes["inferenceheadercontentlength"] = "9" * 5000
    assert decode_event(event) == Payload("raw")
