"""Ground-truth events: which inference they are about and its true label.

``io.infersight.feedback``: a JSON body ``{"request_id": "<id>", "label": <class, list, ...>}``; the
request id may instead be the CloudEvent extension ``requestid``. Seldon's
``io.seldon.serving.feedback``: Seldon's Feedback message ``{"request", "response", "reward",
"truth"}``; the inference is ``response.meta.puid`` (else the ``requestid`` extension) and the label
is ``truth``'s data (``ndarray``, ``tensor``, ``jsonData`` or ``strData``). Either may name the model
with the usual extensions (``namespace``, ``inferenceservicename``, ``component``, ``endpoint``);
without them the label applies to the request id alone, and without ``component`` to every
component's inference of it (a transformer's and its predictor's).
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from infersight.records import FEEDBACK, SELDON_FEEDBACK, ModelRef, RawEvent
from infersight.times import parse_time

FEEDBACK_TYPES = frozenset({FEEDBACK, SELDON_FEEDBACK})


class FeedbackError(ValueError):
    """A feedback event that names no request or no label; the message says which."""


@dataclass(frozen=True, slots=True)
class Feedback:
    event: RawEvent
    request_id: str
    model: ModelRef
    label: Any
    reward: float | None
    time: datetime


def event_time(attributes: dict[str, str], fallback: datetime) -> datetime:
    """The CloudEvent ``time`` as aware UTC; ``fallback`` when absent or unreadable."""
    text = attributes.get("time")
    if not text:
        return fallback
    try:
        return parse_time(text)
    except ValueError:
        return fallback


def _body(event: RawEvent) -> Any:
    data = event.data
    if event.content_encoding == "gzip" or data.startswith(b"\x1f\x8b"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedbackError(f"feedback body is not valid gzip: {exc}") from exc
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedbackError(f"feedback body is not JSON: {exc}") from exc


def _seldon_truth(truth: Any) -> Any:
    """The value of a SeldonMessage: ``data.ndarray``, ``data.tensor`` reshaped, ``jsonData``, ``strData``."""
    if not isinstance(truth, dict):
        return None
    data = truth.get("data")
    if isinstance(data, dict):
        if "ndarray" in data:
            return data["ndarray"]
        tensor = data.get("tensor")
        if isinstance(tensor, dict) and isinstance(tensor.get("values"), list):
            try:
                return np.asarray(tensor["values"]).reshape(tensor.get("shape") or -1).tolist()
            except ValueError as exc:
                raise FeedbackError(f"truth.data.tensor: {exc}") from exc
    for key in ("jsonData", "strData"):
        if key in truth:
            return truth[key]
    return None


def _seldon_puid(body: dict[str, Any]) -> str | None:
    response = body.get("response")
    meta = response.get("meta") if isinstance(response, dict) else None
    puid = meta.get("puid") if isinstance(meta, dict) else None
    return puid if isinstance(puid, str) and puid else None


def parse_feedback(event: RawEvent, received_at: datetime) -> Feedback:
    """Read one feedback event; raises :class:`FeedbackError` when it names no request or no label."""
    body = _body(event)
    if not isinstance(body, dict):
        raise FeedbackError("feedback body must be a JSON object")
    reward: float | None = None
    if event.type == SELDON_FEEDBACK:
        request_id = _seldon_puid(body) or event.attributes.get("requestid")
        label = _seldon_truth(body.get("truth"))
        if isinstance(body.get("reward"), int | float):
            reward = float(body["reward"])
    elif event.type == FEEDBACK:
        request_id = body.get("request_id") or event.attributes.get("requestid")
        label = body.get("label")
    else:
        raise FeedbackError(f"not a feedback event type: {event.type}")
    if not isinstance(request_id, str) or not request_id:
        raise FeedbackError("feedback names no request: set request_id (or the requestid extension)")
    if label is None:
        raise FeedbackError("feedback has no label" + (" (truth)" if event.type == SELDON_FEEDBACK else ""))
    return Feedback(
        event=event,
        request_id=request_id,
        model=event.model,
        label=label,
        reward=reward,
        time=event_time(event.attributes, received_at),
    )
