"""Stored inferences as rows of the export: one per instance, values in the layout's columns."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson

from infersight.records import ADVERSARIAL, OUTLIER
from infersight.sinks.export.schema import Layout
from infersight.sinks.store import tensors
from infersight.sinks.store.labels import label_values

#: Columns read per inference.
SELECTED = (
    "id", "request_id", "namespace", "inferenceservice", "component", "endpoint", "time", "instances",
    "inputs", "input_schema", "outputs", "output_schema", "prediction", "label", "label_time", "scores",
    "outlier", "outlier_score", "adversarial", "adversarial_score",
)  # fmt: skip


def _per_instance(values: list[Any] | None, instances: int) -> list[Any]:
    if values is None or len(values) != instances:
        return [None] * instances
    return values


def _flags(inference: Any, kind: str, instances: int) -> list[tuple[bool | None, float | None]]:
    """Per instance ``(flagged, score)`` for ``kind``; the inference's when detectors scored it as a whole."""
    ran = [entry for entry in (inference["scores"] or {}).values() if entry["kind"] == kind]
    if not ran or any(len(entry["flags"]) != instances for entry in ran):
        return [(inference[kind], inference[f"{kind}_score"])] * instances
    out: list[tuple[bool | None, float | None]] = []
    for i in range(instances):
        values = [entry["scores"][i] for entry in ran if entry["scores"][i] is not None]
        out.append((any(entry["flags"][i] for entry in ran), max(values) if values else None))
    return out


def _side(
    stored: Sequence[dict[str, Any]] | None, schema: str | None, instances: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    """One ``{column: value}`` per instance from one side's stored tensors and stored column list."""
    if not stored or not schema:
        return [{} for _ in range(instances)]
    named = _column_names(schema, names)
    count = tensors.instance_count(stored)
    rows = tensors.rows(stored, count)
    if count != instances:  # the response holds another number of instances than the request
        rows = rows * instances if count == 1 else [*rows, *([[]] * instances)][:instances]
    return [dict(zip(named, row, strict=False)) for row in rows]


@functools.lru_cache(maxsize=1024)
def _schema_names(schema: str) -> tuple[str, ...]:
    return tuple(name for name, _ in orjson.loads(schema))


def _column_names(schema: str, names: dict[str, str]) -> list[str]:
    """The export columns of a stored column list (a few distinct lists, so parsed once each)."""
    return [names[name] for name in _schema_names(schema)]


def instance_rows(inference: Any, layout: Layout) -> list[dict[str, Any]]:
    """The export rows of one stored inference (a mapping of the ``SELECTED`` columns)."""
    instances = max(int(inference["instances"] or 1), 1)
    inputs = _side(inference["inputs"], inference["input_schema"], instances, layout.inputs)
    outputs = _side(inference["outputs"], inference["output_schema"], instances, layout.outputs)
    predictions = _per_instance(inference["prediction"], instances)
    label = inference["label"]
    values = label_values(label) if label is not None else None
    if label is not None and values is None:
        labels: list[Any] = [orjson.dumps(label).decode()] * instances
    else:
        labels = _per_instance(values, instances)
    outliers = _flags(inference, OUTLIER, instances)
    adversarial = _flags(inference, ADVERSARIAL, instances)
    return [
        {
            "request_id": inference["request_id"],
            "instance": i,
            "namespace": inference["namespace"],
            "inferenceservice": inference["inferenceservice"],
            "component": inference["component"],
            "endpoint": inference["endpoint"],
            "time": inference["time"],
            **inputs[i],
            **outputs[i],
            "prediction": predictions[i],
            "label": labels[i],
            "label_time": inference["label_time"],
            "outlier": outliers[i][0],
            "outlier_score": outliers[i][1],
            "adversarial": adversarial[i][0],
            "adversarial_score": adversarial[i][1],
        }
        for i in range(instances)
    ]
