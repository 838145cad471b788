"""Hostile input against the real ingest: every answer is 2xx or a JSON 4xx, and the process survives.

Loggers, proxies and attackers can send anything; one request must never take the ingest down,
leak a 500, or grow its memory. Each test throws generated requests at the session's ingest
(64 KiB body limit, real Kafka) and checks only the contract, not what any one input should get.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Ingest

LIMIT = 65536
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/json",
    "application/cloudevents+json",
    "APPLICATION/CLOUDEVENTS+JSON ; charset=latin-1",
    "application/cloudevents-batch+json",
    "application/octet-stream",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    ";;;",
]

Headers = list[tuple[bytes, bytes]]


@pytest.fixture(scope="module")
def client(ingest: Ingest) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingest.url, timeout=30) as session:
        yield session


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from the kernel's own accounting."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None, status
    return int(match.group(1)) * 1024


@pytest.fixture(scope="module")
def rss_at_start(ingest: Ingest) -> int:
    """The ingest's memory before this module's fuzzing, to compare with afterwards."""
    return rss_bytes(ingest.pid)


def send(client: httpx.Client, headers: Headers, body: bytes, path: str = "/") -> httpx.Response:
    """POST and check the contract: 202 with a count, or 4xx with a JSON error; never 5xx."""
    answer = client.post(path, headers=headers, content=body)
    assert answer.status_code < 500, (answer.status_code, answer.text[:500], headers[:20], body[:200])
    if answer.status_code == 202:
        assert isinstance(answer.json()["accepted"], int)
    else:
        assert 400 <= answer.status_code < 500, answer.status_code
        assert answer.headers["content-type"].startswith("application/json")
        error = answer.json()["error"]
        assert isinstance(error, str) and error
    return answer


_CONTROLS = bytes(code for code in range(32) if code != 9) + b"\x7f"


def field_value(raw: bytes) -> bytes:
    """What HTTP/1.1 lets a header value carry: no control bytes, no surrounding whitespace."""
    return raw.translate(None, _CONTROLS).strip(b" \t")


# Header values: any text, any bytes (also not UTF-8), HTTP-level odd values, and huge ones.
header_value = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=60).map(lambda text: field_value(text.encode())),
    st.binary(max_size=40).map(field_value),
    st.sampled_from([b"1.0", b"0.3", b"", b"\xff\xfe", b"\xc3\x28", b"2026-11-25T10:15:30Z"]),
    st.integers(1000, 90_000).map(lambda size: b"x" * size),
)
header_name = st.one_of(
    st.sampled_from(["specversion", "id", "source", "type", "time", "datacontenttype", "namespace"]),
    st.from_regex(r"\A[a-zA-Z0-9!#$%&'*+.^_`|~-]{0,20}\Z"),
).map(lambda name: b"ce-" + name.encode())

REQUIRED: Headers = [
    (b"ce-specversion", b"1.0"),
    (b"ce-id", b"fuzz"),
    (b"ce-source", b"urn:fuzz"),
    (b"ce-type", b"org.kubeflow.serving.inference.request"),
]


@st.composite
def binary_headers(draw: st.DrawFn) -> Headers:
    """Mostly valid KServe-style headers with some dropped, duplicated, replaced or added."""
    headers = [pair for pair in REQUIRED if draw(st.booleans()) or draw(st.booleans())]
    headers += draw(st.lists(st.tuples(header_name, header_value), max_size=6))
    if draw(st.booleans()):
        headers.append((b"content-type", draw(st.sampled_from(CONTENT_TYPES)).encode()))
    if draw(st.integers(0, 3)) == 0:
        headers.append((b"content-encoding", draw(st.sampled_from([b"gzip", b"GZIP", b"identity", b"br"]))))
    return draw(st.permutations(headers))


surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# JSON values with every hostile scalar: huge integers, NaN and infinities, lone surrogates.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=10**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(), max_size=20),
    st.text(surrogates, min_size=1, max_size=3),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


def dump(value: Any) -> bytes:
    """JSON as permissive writers produce it: NaN and Infinity literals, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


def nested(depth: int, kind: str) -> bytes:
    opener, closer = {"list": (b"[", b"]"), "object": (b'{"a":', b"}")}[kind]
    return opener * depth + b"1" + closer * depth


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Random bytes, broken and deep JSON, broken gzip, and sizes around the limit."""
    kind = draw(
        st.sampled_from(
            ["bytes", "json", "deep", "gzip", "truncated-gzip", "near-limit", "bad-utf8", "literal"]
        )
    )
    if kind == "bytes":
        return draw(st.binary(max_size=3000))
    if kind == "json":
        return dump(draw(json_values))
    if kind == "deep":
        return nested(draw(st.integers(1, 10_000)), draw(st.sampled_from(["list", "object"])))
    if kind in ("gzip", "truncated-gzip"):
        packed = gzip.compress(draw(st.one_of(st.binary(max_size=500), json_values.map(dump))))
        return packed[: draw(st.integers(0, len(packed) - 1))] if kind == "truncated-gzip" else packed
    if kind == "near-limit":
        size = LIMIT + draw(st.integers(-64, 64))
        return b'{"x": "' + b"a" * (size - 10) + b'"}'
    if kind == "bad-utf8":
        return b'{"instances": ["' + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + b'"]}'
    return draw(
        st.sampled_from([b"NaN", b"-Infinity", b"[Infinity, NaN]", b"1e999", b"", b"null", b"\xef\xbb\xbf{}"])
    )


@FUZZ
@given(headers=binary_headers(), body=bodies(), path=st.sampled_from(["/", "/events"]))
def test_binary_mode(
    client: httpx.Client, rss_at_start: int, headers: Headers, body: bytes, path: str
) -> None:
    """ce-* headers missing, duplicated, huge or not UTF-8, over bodies of any shape."""
    send(client, headers, body, path)


ATTRIBUTES = {"specversion": "1.0", "id": "fuzz", "source": "urn:fuzz", "type": "io.infersight.feedback"}


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    """A CloudEvent in JSON with attributes dropped or given any JSON value, and hostile data."""
    envelope: dict[str, Any] = {name: value for name, value in ATTRIBUTES.items() if draw(st.integers(0, 5))}
    names = st.one_of(st.from_regex(r"\A[a-z0-9]{1,12}\Z"), st.text(max_size=12))
    envelope.update(draw(st.dictionaries(names, st.one_of(scalars, json_values), max_size=4)))
    for name in draw(st.lists(st.sampled_from([*ATTRIBUTES, "time", "datacontenttype"]), max_size=2)):
        envelope[name] = draw(scalars)
    if draw(st.booleans()):  # text a valid attribute may hold, but with lone surrogates mixed in
        attribute = draw(st.sampled_from(["id", "source", "type", "namespace", "subject"]))
        envelope[attribute] = draw(st.text(st.one_of(st.characters(), surrogates), min_size=1, max_size=8))
    choice = draw(st.integers(0, 4))
    if choice == 0:
        envelope["data"] = draw(json_values)
    elif choice == 1:
        envelope["data_base64"] = draw(st.one_of(st.text(max_size=20), json_values))
    elif choice == 2:
        envelope["data"] = json.loads(nested(draw(st.integers(200, 1100)), "list"))
    elif choice == 3:
        envelope["datacontenttype"] = "text/plain"
        envelope["data"] = draw(scalars)
    return envelope if draw(st.integers(0, 9)) else draw(json_values)


@FUZZ
@given(envelope=envelopes(), content_type=st.sampled_from(CONTENT_TYPES[3:5]))
def test_structured_mode(client: httpx.Client, rss_at_start: int, envelope: Any, content_type: str) -> None:
    """application/cloudevents+json with wrong types, NaN, surrogates and deep data."""
    send(client, [(b"content-type", content_type.encode())], dump(envelope))


@FUZZ
@given(members=st.lists(envelopes(), max_size=8), filler=st.integers(0, 1200))
def test_batch_mode(client: httpx.Client, rss_at_start: int, members: list[Any], filler: int) -> None:
    """application/cloudevents-batch+json with hostile members, and batches of many tiny events."""
    batch = members + [{**ATTRIBUTES, "id": str(index)} for index in range(filler)]
    send(client, [(b"content-type", b"application/cloudevents-batch+json")], dump(batch))


@FUZZ
@given(
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES), st.from_regex(r"\A[ -~]{0,40}\Z").map(str.strip)),
    body=bodies(),
)
def test_any_content_type_without_attributes(
    client: httpx.Client, rss_at_start: int, content_type: str, body: bytes
) -> None:
    """Whatever the content type says, a body without ce-* headers is parsed or refused, never a 500."""
    send(client, [(b"content-type", content_type.encode())], body)


@FUZZ
@given(
    body=bodies(),
    content_type=st.sampled_from(CONTENT_TYPES),
    encoding=st.sampled_from([None, b"gzip", b"identity"]),
)
def test_a_valid_envelope_is_accepted_whatever_its_body(
    client: httpx.Client, rss_at_start: int, body: bytes, content_type: str, encoding: bytes | None
) -> None:
    """The body is data: with every required attribute, any body within the limit is taken (202)."""
    headers = list(REQUIRED)
    if content_type:
        headers.append((b"content-type", content_type.encode()))
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    answer = send(client, headers, body)
    if answer.status_code == 413:  # too large as sent, or once inflated
        assert len(body) > LIMIT or body.startswith(b"\x1f\x8b") or encoding == b"gzip", answer.text
    else:
        assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("depth", [255, 1000, 1024, 1025, 10_000])
@pytest.mark.parametrize("mode", ["binary", "structured", "batch"])
def test_deep_nesting(client: httpx.Client, rss_at_start: int, depth: int, mode: str) -> None:
    """Nesting past orjson's and Python's recursion limits, at the edges that hypothesis may miss."""
    data = nested(depth, "list")
    if mode == "binary":
        send(client, [*REQUIRED, (b"content-type", b"application/json")], data)
        return
    envelope = b'{"specversion":"1.0","id":"deep","source":"s","type":"t","data":' + data + b"}"
    if mode == "structured":
        send(client, [(b"content-type", b"application/cloudevents+json")], envelope)
    else:
        send(client, [(b"content-type", b"application/cloudevents-batch+json")], b"[" + envelope + b"]")


def test_lone_surrogates_are_refused(client: httpx.Client) -> None:
    """JSON can escape a lone surrogate that UTF-8, Kafka headers and the 4xx answer cannot carry."""
    for extra in ('"id":"\\ud800"', '"a\\udfff":"x"', '"datacontenttype":"text/plain","data":"\\ud83d"'):
        envelope = '{"specversion":"1.0","id":"1","source":"s","type":"t",' + extra + "}"
        answer = send(client, [(b"content-type", b"application/cloudevents+json")], envelope.encode())
        assert answer.status_code == 400


def test_still_up_and_memory_bounded(client: httpx.Client, ingest: Ingest, rss_at_start: int) -> None:
    """Runs last: after the fuzzing the process answers, takes a good event, and has not bloated."""
    assert client.get("/healthz").json() == {"status": "ok"}
    good = send(client, [*REQUIRED, (b"content-type", b"application/json")], b'{"instances": [[1.0, 2.0]]}')
    assert good.status_code == 202
    rss = rss_bytes(ingest.pid)
    assert rss < 2 * rss_at_start + 100 * 2**20, (rss, rss_at_start)
