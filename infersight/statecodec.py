"""How a value kept in the worker's state is framed: a format byte, a JSON header, raw bytes.

Pending halves and open drift windows are kept this way. The first byte is a format version that
is never 0, so a value's first eight bytes never read as a millisecond time: the stream engine's
TTL recovery takes values that start like one for its own stamped values and strips them.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

_HEAD = struct.Struct(">BI")
FORMAT = 1


def frame(header: Any, payload: bytes) -> bytes:
    """``header`` as JSON, then ``payload`` as it is."""
    text = orjson.dumps(header)
    return _HEAD.pack(FORMAT, len(text)) + text + payload


def unframe(blob: bytes) -> tuple[Any, bytes]:
    """The header and the payload of a framed value; ValueError for anything else."""
    if len(blob) < _HEAD.size:
        raise ValueError("not a framed state value: too short")
    version, length = _HEAD.unpack_from(blob)
    if version != FORMAT:
        raise ValueError(f"not a framed state value: format {version}")
    end = _HEAD.size + length
    return orjson.loads(blob[_HEAD.size : end]), blob[end:]
