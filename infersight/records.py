"""The record types that every stage shares: event types, model identity, partition keys.

The types built for every event (:class:`RawEvent`, :class:`Tensor`, :class:`Payload`,
:class:`Half`, :class:`InferenceRecord`) are slotted dataclasses that are not frozen: a frozen
dataclass's ``__init__`` costs three times as much, and no stage changes one once it is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from infersight.revisions import revision_of

KSERVE_REQUEST: Final = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE: Final = "org.kubeflow.serving.inference.response"
SELDON_REQUEST: Final = "io.seldon.serving.inference.request"
SELDON_RESPONSE: Final = "io.seldon.serving.inference.response"
SELDON_FEEDBACK: Final = "io.seldon.serving.feedback"
FEEDBACK: Final = "io.infersight.feedback"

#: Event types we know; metrics label anything else as ``other`` so labels stay bounded.
KNOWN_EVENT_TYPES: Final = frozenset(
    {KSERVE_REQUEST, KSERVE_RESPONSE, SELDON_REQUEST, SELDON_RESPONSE, SELDON_FEEDBACK, FEEDBACK}
)


#: The labels that name a model on the metrics about it; :attr:`ModelRef.metric_labels` holds their values.
MODEL_LABELS: Final = ("namespace", "inferenceservice", "component", "endpoint")
#: The labels of metrics about a model's traffic: the model's, then the revision that served it.
REVISION_LABELS: Final = (*MODEL_LABELS, "revision")


def event_type_label(event_type: str) -> str:
    """The event type as a metric label: itself when known, else ``other``, so labels stay bounded."""
    return event_type if event_type in KNOWN_EVENT_TYPES else "other"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which deployed model an event belongs to: namespace, InferenceService and KServe component.

    ``component`` (``predictor``, ``transformer``, ``explainer``; empty when the logger does not
    say) is part of the identity: a transformer's traffic is not its predictor's. It comes last
    so that ``ModelRef(namespace, inferenceservice, endpoint)`` still reads as it always did.
    The keys and labels derived from it are worked out once, as it is built.
    """

    namespace: str
    inferenceservice: str
    endpoint: str
    component: str = ""
    #: ``namespace/inferenceservice``: every component of one service lands in one partition.
    partition_key: str = field(init=False, repr=False, compare=False)
    #: :attr:`partition_key` as the Kafka key it is.
    kafka_key: bytes = field(init=False, repr=False, compare=False)
    #: The values of the model labels of every metric, in :data:`MODEL_LABELS` order.
    metric_labels: tuple[str, str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        partition_key = f"{self.namespace}/{self.inferenceservice}"
        object.__setattr__(self, "partition_key", partition_key)
        object.__setattr__(self, "kafka_key", partition_key.encode())
        labels = (self.namespace, self.inferenceservice, self.component, self.endpoint)
        object.__setattr__(self, "metric_labels", labels)

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, str]) -> ModelRef:
        """Read the identity from KServe or Seldon extensions (Seldon's ``modelid`` as a fallback).

        A worker sees a few models in every event: each is built once and looked up after.
        """
        get = attributes.get
        identity = (
            get("namespace", ""),
            get("inferenceservicename") or get("modelid") or "",
            get("endpoint", ""),
            get("component", ""),
        )
        model = _MODELS.get(identity)
        if model is None:
            model = cls(*identity)
            if len(_MODELS) < _MODELS_KEPT:
                _MODELS[identity] = model
        return model


_MODELS: dict[tuple[str, str, str, str], ModelRef] = {}
_MODELS_KEPT = 4096


@dataclass(slots=True)
class RawEvent:
    """One CloudEvent as received: attribute texts exactly as sent, and the body's bytes.

    ``content_encoding`` is set when the body is compressed (Seldon's gzip bodies); the bytes
    stay compressed so that what lands in Kafka is what the model server sent.
    """

    attributes: dict[str, str]
    data: bytes
    content_encoding: str | None = None

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def model(self) -> ModelRef:
        return ModelRef.from_attributes(self.attributes)


@dataclass(slots=True)
class Tensor:
    """One named array decoded from a payload.

    ``columns`` names the last axis when the protocol gives names per feature (Seldon
    ``data.names``, dict-shaped v1 instances); otherwise features are known by index.
    """

    name: str
    array: np.ndarray[Any, Any]
    columns: tuple[str, ...] | None = None


@dataclass(slots=True)
class Payload:
    """A request or response body decoded into arrays.

    ``protocol`` is one of ``kserve-v1``, ``oip-v2``, ``seldon``, or ``raw`` for JSON of no known
    shape (kept and counted, not decoded). ``tensors`` keep the order the body gave them.
    """

    protocol: str
    tensors: tuple[Tensor, ...] = ()

    def tensor(self, name: str) -> Tensor:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(name)


REQUEST: Final = "request"
RESPONSE: Final = "response"


def half_of(event: RawEvent) -> str | None:
    """``request`` or ``response`` for inference events (KServe, Seldon), None for anything else."""
    event_type = event.type
    try:
        return _HALVES[event_type]
    except KeyError:
        pass
    kind = event_type.rpartition(".")[2]
    half = kind if event_type.endswith(".inference." + kind) and kind in (REQUEST, RESPONSE) else None
    if len(_HALVES) < _HALVES_KEPT:  # a worker sees a handful of types; never more than this many
        _HALVES[event_type] = half
    return half


_HALVES: dict[str, str | None] = {}
_HALVES_KEPT = 1024


def request_id_of(event: RawEvent) -> str:
    """What pairs a request with its response: Seldon's ``requestid``, else the CloudEvent ``id`` (KServe)."""
    return event.attributes.get("requestid") or event.attributes.get("id", "")


@dataclass(slots=True)
class Half:
    """One side of an inference: the event as received and its decoded body."""

    event: RawEvent
    payload: Payload
    received_at: float


DRIFT: Final = "drift"
OUTLIER: Final = "outlier"
ADVERSARIAL: Final = "adversarial"


@dataclass(frozen=True, slots=True)
class Score:
    """What one outlier or adversarial detector said about one record.

    ``scores`` has one value per instance in the record (a batch request holds several);
    the record is ``flagged`` when any instance is. ``feature_scores`` holds, for a flagged record
    whose detector scores each feature (OutlierVAE, OutlierAE: per pixel), one flat tuple per
    instance: what the UI draws over the stored input.
    """

    detector: str
    kind: str
    scores: tuple[float, ...]
    flags: tuple[bool, ...]
    threshold: float | None
    feature_scores: tuple[tuple[float, ...], ...] | None = None

    @property
    def flagged(self) -> bool:
        return any(self.flags)

    @property
    def score(self) -> float:
        """The highest instance score: the record is as suspicious as its worst instance."""
        return max(self.scores) if self.scores else float("nan")


@dataclass(slots=True)
class InferenceRecord:
    """A request and its response, or one of them alone when the other never came.

    ``scores`` holds what the outlier and adversarial detectors said about it, so that the
    sinks store the flags with the inference.
    """

    request_id: str
    model: ModelRef
    request: Half | None
    response: Half | None
    scores: tuple[Score, ...] = ()

    def flagged(self, kind: str) -> bool:
        return any(score.flagged for score in self.scores if score.kind == kind)

    @property
    def revision(self) -> str:
        """The revision that served the inference (:mod:`infersight.revisions`), read from the request."""
        half = self.request if self.request is not None else self.response
        return revision_of(half.event.attributes) if half is not None else ""

    @property
    def mode(self) -> str:
        """``paired``, or ``request`` / ``response`` for a half that waited out the pairing timeout."""
        if self.request is not None and self.response is not None:
            return "paired"
        return REQUEST if self.request is not None else RESPONSE

    @property
    def occurrence(self) -> str:
        """What tells two inferences under one reused request id apart: the request's ``time``.

        The response's when the request is missing, empty when the half has no ``time``. A
        client may send the same ``ce-id`` with each of its requests (KServe keeps it), so the
        store keys a row by this beside the request id and the model; a redelivered event has
        the same time, and so stays one row.
        """
        half = self.request if self.request is not None else self.response
        return half.event.attributes.get("time", "") if half is not None else ""


@dataclass(frozen=True, slots=True)
class Detection:
    """The result of one drift test over a window, or one outlier or adversarial flag on a record.

    ``statistic`` is the detector's distance or score, ``p_value`` is set for tests that give
    one, and ``threshold`` is what ``statistic`` (or ``p_value`` for p-value tests) is compared
    against. Per-feature values keep the feature names in ``features``. ``window_start`` and
    ``window_end`` are Unix times of the first and last instance covered.
    """

    id: str
    detector: str
    kind: str
    model: ModelRef
    detected: bool
    statistic: float | None
    p_value: float | None
    threshold: float | None
    window_start: float
    window_end: float
    request_ids: tuple[str, ...]
    instances: int
    features: tuple[str, ...] = ()
    feature_statistics: tuple[float, ...] = ()
    feature_p_values: tuple[float, ...] = ()
    time: float = 0.0
    algorithm: str = ""
    #: The detector's version (the folder a versioned ``uri`` names); "" for one not versioned.
    version: str = ""
    #: The revision whose traffic alone the detector watched ("" when it watches every revision).
    revision: str = ""
