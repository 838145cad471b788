"""Records, detections and feedback as the column values of their tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from infersight.records import ADVERSARIAL, OUTLIER, Detection, Half, InferenceRecord, Score
from infersight.sinks.store import tensors
from infersight.sinks.store.feedback import Feedback
from infersight.sinks.store.labels import kind_of, label_values, prediction_values
from infersight.sinks.store.types import json_text, sqlite_event_time, sqlite_seconds
from infersight.times import parse_time

#: Columns of one half; a half stored first is kept, a missing half is filled in when it comes.
REQUEST_COLUMNS = (
    "request_event_id",
    "request_attributes",
    "request_body",
    "request_content_encoding",
    "request_protocol",
    "request_time",
    "request_received_at",
    "inputs",
    "input_schema",
)
RESPONSE_COLUMNS = (
    *(column.replace("request_", "response_") for column in REQUEST_COLUMNS[:-2]),
    "outputs",
    "output_schema",
)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def finite(value: float | None) -> float | None:
    """NaN and infinities as None: SQLite stores NaN as NULL anyway, JSON cannot hold them."""
    return value if value is not None and math.isfinite(value) else None


#: What the rows of one request id of one model share: request id, namespace, service, component.
ModelKey = tuple[str, str, str, str]
#: The identity of an inference row: its model key and its occurrence.
RowKey = tuple[str, str, str, str, str]
#: The ``occurrence`` column's width; a longer ``time`` attribute is cut, the same way every time.
OCCURRENCE_LENGTH = 64


def model_key(request_id: str, namespace: str, inferenceservice: str, component: str) -> ModelKey:
    return (request_id, namespace, inferenceservice, component)


def record_model_key(record: InferenceRecord) -> ModelKey:
    model = record.model
    return model_key(record.request_id, model.namespace, model.inferenceservice, model.component)


def occurrence_of(record: InferenceRecord) -> str:
    """The record's occurrence as the store keeps it."""
    return record.occurrence[:OCCURRENCE_LENGTH]


def record_key(record: InferenceRecord, occurrence: str | None = None) -> RowKey:
    """The row ``record`` goes to: its own occurrence, or the one of the stored row it completes."""
    return (*record_model_key(record), occurrence_of(record) if occurrence is None else occurrence)


#: A half's time as read once: its :func:`half_time`, and the ``time`` text it was read from
#: (None when the event has no readable time and the time is when it was received).
HalfTime = tuple[datetime, str | None]


def read_half_time(half: Half) -> HalfTime:
    """:func:`half_time`, and the text it was read from, if any."""
    text = half.event.attributes.get("time")
    if text:
        try:
            return parse_time(text), text
        except ValueError:
            pass
    return utc(half.received_at), None


def half_time(half: Half) -> datetime:
    """A half's time as its ``request_time`` or ``response_time`` column holds it.

    ``feedback.event_time``, with the time received worked out only when the event has no time.
    """
    return read_half_time(half)[0]


def scores_json(scores: Iterable[Score]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for score in scores:
        entry: dict[str, Any] = {
            "kind": score.kind,
            "scores": [finite(value) for value in score.scores],
            "flags": list(score.flags),
            "threshold": finite(score.threshold),
        }
        if score.feature_scores is not None:
            entry["feature_scores"] = [list(row) for row in score.feature_scores]
        out[score.detector] = entry
    return out


def flags(scores: dict[str, Any], kind: str) -> tuple[bool | None, float | None]:
    """Whether any detector of ``kind`` flagged any instance, and the highest score; None when none ran."""
    ran = [entry for entry in scores.values() if entry["kind"] == kind]
    if not ran:
        return None, None
    values = [value for entry in ran for value in entry["scores"] if value is not None]
    return any(any(entry["flags"]) for entry in ran), max(values) if values else None


def _extension_json(attributes: dict[str, str], key: str) -> Any:
    """The logger's JSON-valued extensions (``metadata``, ``annotations``), parsed; text when not JSON."""
    text = attributes.get(key)
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


#: The columns of ``inferences`` that a write gives, in table order: all but ``id`` and the label's.
INSERT_COLUMNS = (
    "request_id",
    "namespace",
    "inferenceservice",
    "endpoint",
    "component",
    "revision",
    "occurrence",
    "time",
    "protocol",
    "instances",
    *REQUEST_COLUMNS,
    *RESPONSE_COLUMNS,
    "metadata",
    "annotations",
    "scores",
    "outlier",
    "outlier_score",
    "adversarial",
    "adversarial_score",
    "prediction",
    "prediction_kind",
    "stored_at",
)
_NO_HALF = (None,) * len(REQUEST_COLUMNS)


def _half(half: Half | None, side: str) -> dict[str, Any]:
    """The columns of one side (``request`` or ``response``); all None when that half is missing."""
    request = side == "request"
    names = REQUEST_COLUMNS if request else RESPONSE_COLUMNS
    if half is None:
        return dict.fromkeys(names)
    received = utc(half.received_at)
    tensor_json = tensors.payload_json(half.payload)
    instances = tensors.instance_count(tensor_json)
    schema = tensors.columns(tensor_json, instances, "input" if request else "output")
    values = (
        half.event.attributes.get("id"),
        half.event.attributes,
        half.event.data,
        half.event.content_encoding,
        half.payload.protocol,
        half_time(half),
        received,
        tensor_json,
        orjson.dumps(schema).decode(),
    )
    return dict(zip(names, values, strict=True))


def inference_row(
    record: InferenceRecord, scores: dict[str, Any] | None, now: datetime, occurrence: str | None = None
) -> dict[str, Any]:
    """Every column of ``inferences`` for one record, as Python values; ``scores`` already merged.

    ``occurrence`` is that of the stored row the record completes, when not its own. What
    SQLAlchemy's column types take; :func:`inference_values` gives the same values as the
    drivers take them.
    """
    request, response = _half(record.request, "request"), _half(record.response, "response")
    first = request if record.request is not None else response
    prediction = prediction_values(response["outputs"]) if record.response is not None else None
    half = record.request if record.request is not None else record.response
    if half is None:
        raise ValueError(f"record {record.request_id} has neither a request nor a response")
    attributes = half.event.attributes
    outlier, outlier_score = flags(scores or {}, OUTLIER)
    adversarial, adversarial_score = flags(scores or {}, ADVERSARIAL)
    return {
        "request_id": record.request_id,
        "namespace": record.model.namespace,
        "inferenceservice": record.model.inferenceservice,
        "endpoint": record.model.endpoint,
        "component": record.model.component,
        "revision": record.revision,
        "occurrence": occurrence_of(record) if occurrence is None else occurrence,
        "time": request["request_time"] or response["response_time"],
        "protocol": first.get("request_protocol") or first.get("response_protocol"),
        "instances": tensors.instance_count(first.get("inputs") or first.get("outputs") or []),
        **request,
        **response,
        "metadata": _extension_json(attributes, "metadata"),
        "annotations": _extension_json(attributes, "annotations"),
        "scores": scores or None,
        "outlier": outlier,
        "outlier_score": outlier_score,
        "adversarial": adversarial,
        "adversarial_score": adversarial_score,
        "prediction": prediction,
        "prediction_kind": kind_of(prediction) if prediction else None,
        "stored_at": now,
    }


@dataclass(frozen=True, slots=True)
class DriverForm:
    """How a dialect's driver takes a row's times; JSON goes to both as text (``types.json_text``)."""

    #: An aware time, and the text it was read from (None when not read from a text).
    time: Callable[[datetime, str | None], Any]
    #: Unix seconds (when a half was received), as ``time(utc(seconds), None)`` gives them.
    seconds: Callable[[float], Any]


def _aware(value: datetime, _text: str | None) -> datetime:
    return value


#: SQLite's driver takes times as SQLAlchemy writes them, as text; psycopg takes aware datetimes.
SQLITE_FORM = DriverForm(sqlite_event_time, sqlite_seconds)
POSTGRESQL_FORM = DriverForm(_aware, utc)


def driver_form(dialect: str) -> DriverForm:
    return SQLITE_FORM if dialect == "sqlite" else POSTGRESQL_FORM


def _json_or_null(value: Any) -> str | None:
    """A JSON column's driver value: JSON text, or None (SQL NULL) for None, as ``json_type`` says."""
    return None if value is None else json_text(value)


#: ``prediction`` and ``prediction_kind`` by a response's first tensor, for tensors whose values
#: say them whole: one-dimensional, few values, of one Python type that the tensor's kind fixes
#: (a classifier's classes, mostly). NaN never matches itself: such values are worked out again.
_PREDICTIONS: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}
_PREDICTIONS_KEPT = 4096
_ONE_TYPE_KINDS = frozenset({tensors.INT, tensors.BOOL})


def _prediction(output: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The ``prediction`` column (as JSON text) and ``prediction_kind`` of a response's first tensor."""
    if output is None:
        return None, None
    data, kind = output["data"], output["kind"]
    key = None
    if len(output["shape"]) == 1 and len(data) <= 8:
        one_type = kind in _ONE_TYPE_KINDS or (
            kind == tensors.STRING and all(type(value) is str for value in data)
        )
        if one_type:
            key = (kind, *data)
            if (found := _PREDICTIONS.get(key)) is not None:
                return found
    values = prediction_values([output])
    found = (None if values is None else json_text(values), kind_of(values) if values else None)
    if key is not None:
        if len(_PREDICTIONS) >= _PREDICTIONS_KEPT:
            _PREDICTIONS.clear()
        _PREDICTIONS[key] = found
    return found


def _half_values(
    half: Half, side: str, time: HalfTime, form: DriverForm
) -> tuple[tuple[Any, ...], dict[str, Any] | None, int]:
    """One side's columns (in ``REQUEST_COLUMNS`` order), its first tensor's JSON, its instances.

    ``time`` is the half's, read once by the caller (:func:`read_half_time`).
    """
    payload, event = half.payload, half.event
    text, schema, instances, first = tensors.payload_text(payload, side)
    attributes = event.attributes
    values = (
        attributes.get("id"),
        json_text(attributes),
        event.data,
        event.content_encoding,
        payload.protocol,
        form.time(time[0], time[1]),
        form.seconds(half.received_at),
        text,
        schema,
    )
    return values, first, instances


def inference_values(
    record: InferenceRecord,
    scores: dict[str, Any] | None,
    stored_at: Any,
    occurrence: str,
    request_time: HalfTime | None,
    response_time: HalfTime | None,
    form: DriverForm,
) -> tuple[Any, ...]:
    """:func:`inference_row` in ``INSERT_COLUMNS`` order, each value as ``form``'s driver takes it.

    What SQLAlchemy's column types would hand the driver for that row, without their processing
    of each value. ``stored_at`` is already in ``form``; ``occurrence`` is the row's; the halves'
    times are their :func:`read_half_time`, None for a missing half.
    """
    request, response = record.request, record.response
    if request is not None:
        if request_time is None:
            raise ValueError(f"record {record.request_id}: the time of its request is missing")
        request_values, _, instances = _half_values(request, "input", request_time, form)
        first = request
    else:
        request_values = _NO_HALF
    if response is not None:
        if response_time is None:
            raise ValueError(f"record {record.request_id}: the time of its response is missing")
        response_values, output, response_instances = _half_values(response, "output", response_time, form)
        prediction, prediction_kind = _prediction(output)
        if request is None:
            first, instances = response, response_instances
    else:
        response_values, prediction, prediction_kind = _NO_HALF, None, None
    if request is None and response is None:
        raise ValueError(f"record {record.request_id} has neither a request nor a response")
    attributes = first.event.attributes
    metadata, annotations = attributes.get("metadata"), attributes.get("annotations")
    if scores:
        outlier, outlier_score = flags(scores, OUTLIER)
        adversarial, adversarial_score = flags(scores, ADVERSARIAL)
    else:
        outlier = outlier_score = adversarial = adversarial_score = None
    model = record.model
    return (
        record.request_id,
        model.namespace,
        model.inferenceservice,
        model.endpoint,
        model.component,
        record.revision,
        occurrence,
        request_values[5] if request is not None else response_values[5],
        first.payload.protocol or None,
        instances,
        *request_values,
        *response_values,
        None if metadata is None else _json_or_null(_extension_json(attributes, "metadata")),
        None if annotations is None else _json_or_null(_extension_json(attributes, "annotations")),
        json_text(scores) if scores else None,
        outlier,
        outlier_score,
        adversarial,
        adversarial_score,
        prediction,
        prediction_kind,
        stored_at,
    )


def detection_row(detection: Detection, now: datetime) -> dict[str, Any]:
    return {
        "id": detection.id,
        "detector": detection.detector,
        "kind": detection.kind,
        "algorithm": detection.algorithm,
        "namespace": detection.model.namespace,
        "inferenceservice": detection.model.inferenceservice,
        "endpoint": detection.model.endpoint,
        "component": detection.model.component,
        "detected": detection.detected,
        "statistic": finite(detection.statistic),
        "p_value": finite(detection.p_value),
        "threshold": finite(detection.threshold),
        "window_start": utc(detection.window_start),
        "window_end": utc(detection.window_end),
        "time": utc(detection.time or detection.window_end),
        "instances": detection.instances,
        "request_ids": list(detection.request_ids),
        "features": list(detection.features),
        "feature_statistics": [finite(value) for value in detection.feature_statistics],
        "feature_p_values": [finite(value) for value in detection.feature_p_values],
        "detector_version": detection.version,
        "stored_at": now,
    }


def feedback_row(feedback: Feedback, now: datetime) -> dict[str, Any]:
    attributes = feedback.event.attributes
    values = label_values(feedback.label)
    return {
        "event_source": attributes.get("source", ""),
        "event_id": attributes.get("id", ""),
        "type": feedback.event.type,
        "request_id": feedback.request_id,
        "namespace": feedback.model.namespace,
        "inferenceservice": feedback.model.inferenceservice,
        "endpoint": feedback.model.endpoint,
        "component": feedback.model.component,
        "label": feedback.label,
        "label_kind": kind_of(values) if values else tensors.STRING,
        "reward": finite(feedback.reward),
        "time": feedback.time,
        "attributes": attributes,
        "body": feedback.event.data,
        "stored_at": now,
    }
