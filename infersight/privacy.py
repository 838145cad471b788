"""What of a model's traffic is kept: a sampled share, with configured fields redacted.

Both the ingest (before an event reaches Kafka) and the workers (for events that came straight
from a KafkaSink or Seldon topic) apply the same rules, so nothing outside them is stored.
Sampling is decided by a hash of the model and the request id: a request and its response are
kept or dropped together, by every process alike.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from infersight.config import ModelConfig
from infersight.eventformat import gunzip, is_json, load_json
from infersight.records import ModelRef, RawEvent, half_of, request_id_of

REDACTED = "[REDACTED]"
_WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class ModelRules:
    sample_rate: float
    redact: tuple[tuple[str, ...], ...]
    redact_attributes: frozenset[str]

    @property
    def changes_nothing(self) -> bool:
        return self.sample_rate >= 1.0 and not self.redact and not self.redact_attributes


def sampled_in(model: ModelRef, request_id: str, rate: float) -> bool:
    """Whether this inference falls in the kept share; the same answer for both of its halves."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(f"{model.partition_key}|{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


def _redact_path(node: Any, path: Sequence[str]) -> bool:
    """Replace what ``path`` names inside ``node`` with the redaction mark; whether anything matched."""
    head, rest = path[0], path[1:]
    keys: list[Any]
    if isinstance(node, dict):
        keys = list(node) if head == _WILDCARD else [head] if head in node else []
    elif isinstance(node, list):
        indexes = range(len(node)) if head == _WILDCARD else [int(head)] if head.isdigit() else []
        keys = [index for index in indexes if index < len(node)]
    else:
        return False
    matched = False
    for key in keys:
        if rest:
            matched |= _redact_path(node[key], rest)
        else:
            node[key] = REDACTED
            matched = True
    return matched


def _parse(plain: bytes) -> tuple[Any, bool]:
    """The JSON value, and whether it needed Python's parser (NaN, Infinity) to be read."""
    try:
        return orjson.loads(plain), False
    except orjson.JSONDecodeError:
        return load_json(plain, "body"), True


def redact_body(
    data: bytes, paths: Iterable[Sequence[str]], content_encoding: str | None, limit: int
) -> bytes:
    """The body with every field a path names replaced; the bytes as they were when none matched."""
    plain = gunzip(data, limit) if content_encoding == "gzip" else data
    document, lenient = _parse(plain)
    matched = False
    for path in paths:
        matched |= _redact_path(document, path)
    if not matched:
        return data
    redacted = json.dumps(document, separators=(",", ":")).encode() if lenient else orjson.dumps(document)
    return gzip.compress(redacted, mtime=0) if content_encoding == "gzip" else redacted


class TrafficRules:
    """The sampling and redaction rules of every configured model."""

    def __init__(self, models: Iterable[ModelConfig], body_limit: int) -> None:
        self.body_limit = body_limit
        # By namespace, service, component and endpoint (None where the entry leaves it unset).
        self._rules: dict[tuple[str, str, str | None, str | None], ModelRules] = {}
        for model in models:
            rules = ModelRules(
                sample_rate=model.sample_rate,
                redact=tuple(tuple(path.split(".")) for path in model.redact),
                redact_attributes=frozenset(model.redact_attributes),
            )
            if not rules.changes_nothing:
                key = (model.namespace, model.inferenceservice, model.component, model.endpoint)
                self._rules[key] = rules

    @property
    def empty(self) -> bool:
        return not self._rules

    def rules_for(self, model: ModelRef) -> ModelRules | None:
        """The most specific entry's: naming the component (and endpoint), the endpoint, or neither."""
        service = (model.namespace, model.inferenceservice)
        for component, endpoint in (
            (model.component, model.endpoint),
            (model.component, None),
            (None, model.endpoint),
            (None, None),
        ):
            rules = self._rules.get((*service, component, endpoint))
            if rules is not None:
                return rules
        return None

    def apply(self, event: RawEvent) -> RawEvent | None:
        """The event as it may be kept, or None when its inference is sampled out.

        Only inference requests and responses are sampled and redacted; feedback and other
        events pass as they are. Raises InvalidEvent when a body to redact is not JSON.
        """
        if not self._rules or half_of(event) is None:
            return event
        rules = self.rules_for(event.model)
        if rules is None:
            return event
        if not sampled_in(event.model, request_id_of(event), rules.sample_rate):
            return None
        if rules.redact_attributes:
            attributes = {k: v for k, v in event.attributes.items() if k not in rules.redact_attributes}
            event = replace(event, attributes=attributes)
        if rules.redact and event.data and is_json(event.attributes.get("datacontenttype")):
            event = replace(
                event, data=redact_body(event.data, rules.redact, event.content_encoding, self.body_limit)
            )
        return event
