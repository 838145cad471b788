"""Predicted classes and true labels in one shape, so that accuracy is a plain comparison.

A classifier's response gives classes (``predictions: [2]``, a v2 INT64 tensor, class names) or
probabilities (``[[0.1, 0.9]]``: the class is the argmax). Labels come as a class, a list of classes,
``[[class]]`` (Seldon's ``truth``) or one-hot rows. Both become one value per instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from infersight.sinks.store.tensors import BOOL, FLOAT, INT, STRING


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value))


def _rows(value: Any) -> list[Any] | None:
    """One value per instance from a scalar, a list, ``[[v], ...]`` or rows of scores (argmax)."""
    if not isinstance(value, list):
        return None if isinstance(value, dict) or value is None else [value]
    if not value or not isinstance(value[0], list):
        return value if not any(isinstance(v, dict | list) for v in value) else None
    if not value[0] or not all(isinstance(row, list) and len(row) == len(value[0]) for row in value):
        return None  # rows of no values name no class
    if len(value[0]) == 1:
        return _rows([row[0] for row in value])
    if not all(_is_number(v) for row in value for v in row):
        return None
    return [int(i) for i in np.argmax(np.asarray(value, dtype=np.float64), axis=-1)]


def kind_of(values: Sequence[Any]) -> str:
    """The narrowest export kind that holds every value."""
    if values and all(isinstance(v, bool) for v in values):
        return BOOL
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return INT
    if all(_is_number(v) for v in values):
        return FLOAT
    return STRING


def label_values(label: Any) -> list[Any] | None:
    """The true class per instance; None for a label of no class shape (a JSON object, say)."""
    return _rows(label)


def prediction_values(outputs: Sequence[dict[str, Any]]) -> list[Any] | None:
    """The predicted class per instance from the first output tensor; None when it is no classifier's.

    Scores over several classes give their argmax; whole-number floats count as classes (v1
    responses often say ``[1.0]``); other floats are a regression's and give None.
    """
    if not outputs:
        return None
    tensor = outputs[0]
    shape, kind = tensor["shape"], tensor["kind"]
    if len(shape) >= 2 and shape[-1] > 1:
        return _rows(tensor["data"]) if kind == FLOAT else None
    values = _rows(tensor["data"])
    if not values:
        return None
    if kind != FLOAT:
        return values
    if all(_is_number(v) and float(v).is_integer() for v in values):
        return [int(v) for v in values]
    return None


def _same(predicted: Any, true: Any) -> bool:
    if _is_number(predicted) and _is_number(true):
        return float(predicted) == float(true)
    return str(predicted) == str(true)


def is_correct(prediction: Sequence[Any] | None, label: Sequence[Any] | None) -> bool | None:
    """Whether every instance's predicted class is its label; None when either is unknown."""
    if prediction is None or label is None or len(prediction) != len(label):
        return None
    return all(_same(p, t) for p, t in zip(prediction, label, strict=True))
