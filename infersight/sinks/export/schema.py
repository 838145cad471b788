"""The export's columns: fixed ones around the features and outputs every selected inference has.

The features come from the column lists the writer stored per inference (``input_schema``,
``output_schema``), read with one ``SELECT DISTINCT``, so that the schema is known before the
first row is written and no row needs holding back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from sqlalchemy import Connection, select

from infersight.sinks.store.filters import INFERENCES, PayloadFilter, all_of, payload_conditions
from infersight.sinks.store.tensors import BOOL, FLOAT, INT, STRING, merge_kinds

TIMESTAMP = "timestamp"
ARROW_TYPES = {
    BOOL: pa.bool_(),
    INT: pa.int64(),
    FLOAT: pa.float64(),
    STRING: pa.string(),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
}
LEADING = (
    ("request_id", STRING),
    ("instance", INT),
    ("namespace", STRING),
    ("inferenceservice", STRING),
    ("component", STRING),
    ("endpoint", STRING),
    ("time", TIMESTAMP),
)
TRAILING = (
    ("label_time", TIMESTAMP),
    ("outlier", BOOL),
    ("outlier_score", FLOAT),
    ("adversarial", BOOL),
    ("adversarial_score", FLOAT),
)


@dataclass(frozen=True)
class Layout:
    """Column names and kinds in file order; where each side's values land."""

    columns: tuple[tuple[str, str], ...]
    inputs: dict[str, str]  # stored feature name -> column name
    outputs: dict[str, str]

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.columns])


def _union(found: dict[str, str], named: Iterable[Any]) -> None:
    for name, kind in named:
        found[name] = merge_kinds(found[name], kind) if name in found else kind


def layout(connection: Connection, where: PayloadFilter) -> Layout:
    """The columns for the inferences ``where`` selects."""
    c = INFERENCES.c
    query = (
        select(c.input_schema, c.output_schema, c.prediction_kind, c.label_kind)
        .where(all_of(payload_conditions(connection, where)))
        .distinct()
    )
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    prediction: str | None = None
    label: str | None = None
    for input_schema, output_schema, prediction_kind, label_kind in connection.execute(query):
        _union(inputs, orjson.loads(input_schema) if input_schema else ())
        _union(outputs, orjson.loads(output_schema) if output_schema else ())
        if prediction_kind:
            prediction = merge_kinds(prediction, prediction_kind) if prediction else prediction_kind
        if label_kind:
            label = merge_kinds(label, label_kind) if label else label_kind
    taken = {name for name, _ in LEADING + TRAILING} | {"prediction", "label"}
    input_names = _rename(inputs, taken, "input")
    output_names = _rename(outputs, taken | set(input_names.values()), "output")
    columns = (
        *LEADING,
        *((input_names[name], kind) for name, kind in inputs.items()),
        *((output_names[name], kind) for name, kind in outputs.items()),
        ("prediction", prediction or INT),
        ("label", label or INT),
        *TRAILING,
    )
    return Layout(columns=columns, inputs=input_names, outputs=output_names)


def _rename(named: dict[str, str], taken: set[str], side: str) -> dict[str, str]:
    """Feature names as column names; one that clashes with another column gets ``input.`` or ``output.``."""
    return {name: f"{side}.{name}" if name in taken else name for name in named}
