"""Detections as CloudEvents: ``io.infersight.detection.<kind>``, subject the model, JSON data.

The same event goes to the detections topic (Kafka binary binding, keyed by model like the
payloads) and to the reply URL (HTTP binary mode). Extensions repeat what consumers filter on
(model identity, detector, whether something was detected) so they need not parse the data.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

from cloudevents.core.bindings import http, kafka
from cloudevents.core.v1.event import CloudEvent

from infersight.records import Detection
from infersight.times import format_time

TYPE_PREFIX: Final = "io.infersight.detection."
SOURCE: Final = "/infersight/worker"


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such values are reported as null."""
    return None if value is None or not math.isfinite(value) else value


def _iso(stamp: float) -> str | None:
    return format_time(stamp) if math.isfinite(stamp) else None


def detection_data(detection: Detection) -> dict[str, Any]:
    """The event's data: what was tested, on what, and what came out."""
    model = detection.model
    features = [
        {
            "name": name,
            "statistic": _number(detection.feature_statistics[index])
            if index < len(detection.feature_statistics)
            else None,
            "p_value": _number(detection.feature_p_values[index])
            if index < len(detection.feature_p_values)
            else None,
        }
        for index, name in enumerate(detection.features)
    ]
    return {
        "detector": detection.detector,
        "detector_version": detection.version,
        "algorithm": detection.algorithm,
        "kind": detection.kind,
        "namespace": model.namespace,
        "inferenceservice": model.inferenceservice,
        "component": model.component,
        "endpoint": model.endpoint,
        "detected": detection.detected,
        "statistic": _number(detection.statistic),
        "p_value": _number(detection.p_value),
        "threshold": _number(detection.threshold),
        "features": features,
        "window": {
            "start": _iso(detection.window_start),
            "end": _iso(detection.window_end),
            "instances": detection.instances,
        },
        "request_ids": list(detection.request_ids),
    }


def to_cloudevent(detection: Detection) -> CloudEvent:
    model = detection.model
    return CloudEvent(
        attributes={
            "id": detection.id,
            "source": SOURCE,
            "type": TYPE_PREFIX + detection.kind,
            "subject": model.partition_key,
            "time": datetime.fromtimestamp(detection.time, UTC),
            "datacontenttype": "application/json",
            "namespace": model.namespace,
            "inferenceservicename": model.inferenceservice,
            "component": model.component,
            "endpoint": model.endpoint,
            "detector": detection.detector,
            "detected": str(detection.detected).lower(),
        },
        data=detection_data(detection),
    )


def to_kafka(detection: Detection) -> kafka.KafkaMessage:
    """Binary mode: ``ce_`` headers, the JSON data as the value, the model as the key."""
    return kafka.to_binary_event(to_cloudevent(detection), key_mapper=lambda event: event.get_subject())


def to_http(detection: Detection) -> http.HTTPMessage:
    """Binary mode: ``ce-`` headers and the JSON data as the body."""
    return http.to_binary_event(to_cloudevent(detection))
