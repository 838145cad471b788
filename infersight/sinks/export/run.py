"""``infersight export``: stream the selected inferences out of the store into a file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from infersight.sinks.export.rows import SELECTED, instance_rows
from infersight.sinks.export.schema import layout
from infersight.sinks.export.writers import WRITERS, record_batch
from infersight.sinks.store.filters import INFERENCES, PayloadFilter, all_of, payload_conditions

FORMATS = tuple(WRITERS)
#: Values per Arrow batch (rows times columns): bounds memory whatever the number of features.
BATCH_VALUES = 2_000_000
#: Rows fetched from the database at a time (a server-side cursor on PostgreSQL).
FETCH_ROWS = 1000


@dataclass(frozen=True)
class ExportResult:
    path: Path
    inferences: int
    rows: int
    columns: tuple[str, ...]


def export(
    engine: Engine,
    where: PayloadFilter,
    path: Path,
    file_format: str,
    *,
    progress: Callable[[int], None] | None = None,
    batch_values: int = BATCH_VALUES,
) -> ExportResult:
    """Write the inferences ``where`` selects, oldest first; ``progress`` hears of each fetched chunk.

    Rows go out in batches of about ``batch_values`` values (a Parquet row group each).
    """
    if file_format not in WRITERS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {file_format!r}")
    c = INFERENCES.c
    inferences = rows = 0
    with engine.connect() as connection:
        plan = layout(connection, where)
        schema = plan.arrow
        batch_rows = max(1, batch_values // len(plan.columns))
        query = (
            select(*(c[name] for name in SELECTED))
            .where(all_of(payload_conditions(connection, where)))
            .order_by(c.time, c.id)
        )
        writer = WRITERS[file_format](path, schema)
        try:
            pending: list[dict[str, object]] = []
            result = connection.execution_options(yield_per=FETCH_ROWS).execute(query)
            for chunk in result.mappings().partitions():
                for inference in chunk:
                    pending.extend(instance_rows(inference, plan))
                    if len(pending) >= batch_rows:
                        writer.write(record_batch(pending, plan.columns, schema))
                        rows += len(pending)
                        pending = []
                inferences += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if pending or rows == 0:
                writer.write(record_batch(pending, plan.columns, schema))
                rows += len(pending)
        finally:
            writer.close()
    return ExportResult(path=path, inferences=inferences, rows=rows, columns=tuple(schema.names))
