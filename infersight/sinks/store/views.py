"""What queries return: the shapes of the API's JSON (and its OpenAPI document) and the CLI's rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class ModelSummary(BaseModel):
    namespace: str
    inferenceservice: str
    #: The KServe component (predictor, transformer, explainer); empty when the logger did not say.
    component: str
    endpoint: str
    inferences: int
    first_seen: datetime
    last_seen: datetime
    outliers: int
    adversarial: int
    labelled: int
    #: Share of labelled classifier inferences predicted right; None before any.
    accuracy: float | None
    detections: int
    drift_detected: int


class Payload(BaseModel):
    id: int
    request_id: str
    namespace: str
    inferenceservice: str
    #: The KServe component (predictor, transformer, explainer); empty when the logger did not say.
    component: str
    endpoint: str
    #: The revision that served it; empty when its events did not say.
    revision: str
    #: What tells this inference from others under the same request id: the request's CloudEvent time.
    occurrence: str
    time: datetime
    protocol: str | None
    instances: int | None
    outlier: bool | None
    outlier_score: float | None
    adversarial: bool | None
    adversarial_score: float | None
    prediction: list[Any] | None
    label: Any
    label_time: datetime | None
    correct: bool | None
    request_time: datetime | None
    response_time: datetime | None
    #: Decoded tensors: ``[{"name", "kind", "shape", "columns", "data"}, ...]``.
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None
    scores: dict[str, Any] | None = None
    metadata: Any = None
    #: The logger's ``annotations`` extension, parsed.
    annotations: dict[str, Any] | None = None
    request_attributes: dict[str, Any] | None = None
    response_attributes: dict[str, Any] | None = None
    #: Raw bodies as base64, only when asked for.
    request_body: str | None = None
    response_body: str | None = None


class Detection(BaseModel):
    id: str
    detector: str
    kind: str
    algorithm: str
    namespace: str
    inferenceservice: str
    #: The KServe component (predictor, transformer, explainer); empty when the logger did not say.
    component: str
    endpoint: str
    detected: bool
    statistic: float | None
    p_value: float | None
    threshold: float | None
    window_start: datetime
    window_end: datetime
    time: datetime
    instances: int
    request_ids: list[str]
    features: list[str]
    feature_statistics: list[float | None]
    feature_p_values: list[float | None]
    #: The detector's version that made it; empty for detectors not versioned.
    detector_version: str


class PayloadPage(BaseModel):
    items: list[Payload]
    #: Pass as ``cursor`` for the next page; None on the last.
    next_cursor: str | None


class DetectionPage(BaseModel):
    items: list[Detection]
    next_cursor: str | None


class RevisionSummary(BaseModel):
    """One revision of a model: its traffic, flags and labels."""

    namespace: str
    inferenceservice: str
    component: str
    revision: str
    inferences: int
    first_seen: datetime
    last_seen: datetime
    outliers: int
    adversarial: int
    labelled: int
    correct: int


class Bucket(BaseModel):
    """One stretch of a timeline: from ``start`` (inclusive) to ``end``."""

    start: datetime
    end: datetime
    inferences: int
    outliers: int
    adversarial: int
    labelled: int
    #: Labelled inferences predicted right: accuracy is ``correct / labelled``.
    correct: int

    @staticmethod
    def counts() -> tuple[str, ...]:
        return ("inferences", "outliers", "adversarial", "labelled", "correct")


class Timeline(BaseModel):
    buckets: list[Bucket]


class Histogram(BaseModel):
    #: Values binned, and the counts per bin between the feature's ``edges``.
    count: int
    counts: list[int]


class FeatureDistribution(BaseModel):
    feature: str
    #: ``len(counts) + 1`` bin edges, shared by the reference and the window.
    edges: list[float]
    reference: Histogram
    current: Histogram
    p_value: float | None
    statistic: float | None


class WindowDistributions(BaseModel):
    detection: str
    detector: str
    threshold: float | None
    window_start: datetime
    window_end: datetime
    features: list[FeatureDistribution]


class CanaryWindow(BaseModel):
    """One window both revisions served: each question's p-value (None when not asked), the call."""

    start: datetime
    end: datetime
    baseline_instances: int
    candidate_instances: int
    inputs_p: float | None
    predictions_p: float | None
    outliers_p: float | None
    accuracy_p: float | None
    #: ``differs``, ``same``, or ``too few`` instances on a side to ask anything.
    call: str
    reasons: list[str]


class CanaryVerdict(BaseModel):
    namespace: str | None
    inferenceservice: str | None
    baseline: str
    candidate: str
    #: ``promote``, ``hold`` or ``roll back``.
    verdict: str
    reason: str
    p_val: float
    windows: list[CanaryWindow]
