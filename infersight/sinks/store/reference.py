"""A reference set from stored payloads: the rows a detector would score, for fitting its next version.

The rows are read as ``infersight.detectors.features`` reads a live record: per side (``request``
inputs, ``response`` outputs) the first tensor, or the one named, its first axis the instances
and the rest flattened into features; sides joined feature by feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from infersight.sinks.store.filters import INFERENCES, PayloadFilter, QueryError, all_of, payload_conditions
from infersight.sinks.store.tensors import detector_rows

_COLUMNS = {"request": "inputs", "response": "outputs"}


def reference_rows(
    engine: Engine, where: PayloadFilter, sides: Sequence[str], tensor: str | None, most: int
) -> np.ndarray[Any, Any]:
    """Up to ``most`` instances of the newest inferences ``where`` selects, as float rows.

    Inferences whose payload gives no rows of the width most of them have are left out.
    """
    c = INFERENCES.c
    with engine.connect() as connection:
        query = (
            select(*(c[_COLUMNS[side]] for side in sides))
            .where(all_of(payload_conditions(connection, where)))
            .order_by(c.time.desc(), c.id.desc())
        )
        parts: list[np.ndarray[Any, Any]] = []
        count = 0
        for row in connection.execute(query.execution_options(yield_per=1000)):
            arrays = [detector_rows(value, tensor) for value in row]
            if any(a is None for a in arrays) or len({a.shape[0] for a in arrays if a is not None}) != 1:
                continue
            parts.append(np.hstack([a for a in arrays if a is not None]))
            count += parts[-1].shape[0]
            if count >= most:
                break
    if not parts:
        raise QueryError("no stored inferences match: nothing to build a reference from")
    widths = [part.shape[1] for part in parts]
    width = max(set(widths), key=widths.count)
    return np.vstack([part for part in parts if part.shape[1] == width])[:most]
