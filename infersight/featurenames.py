"""The one rule that names features: detections, metrics, the UI and exports use the same names.

A tensor's columns (Seldon's ``data.names``, named v1 instances) name its features when they fit;
a named tensor (Open Inference Protocol v2) gives ``name`` or ``name_0``, ``name_1``...; a tensor
whose name only says where the protocol put the data is known by its side and position:
``input_0``, ``input_1``... for a request's first tensor, ``output_0``... for a response's,
``input1_0``... for a request's second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

#: Tensor names that only say where the protocol put the data; features are then named by index.
GENERIC_NAMES: Final = frozenset(
    {"instances", "inputs", "predictions", "outputs", "ndarray", "tensor", "jsonData", "strData", "binData"}
)
INPUT: Final = "input"
OUTPUT: Final = "output"


def feature_names(
    tensor_name: str, columns: Sequence[object] | None, width: int, side: str, position: int
) -> list[str]:
    """The names of a tensor's ``width`` features per instance; ``side`` is ``input`` or ``output``."""
    if columns and len(columns) == width:
        return [str(column) for column in columns]
    if tensor_name in GENERIC_NAMES:
        prefix = side if position == 0 else f"{side}{position}"
        return [f"{prefix}_{index}" for index in range(width)]
    return [tensor_name] if width == 1 else [f"{tensor_name}_{index}" for index in range(width)]
