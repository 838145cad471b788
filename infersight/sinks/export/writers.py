"""The three file formats, each fed Arrow record batches so that memory stays one batch deep."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from infersight.sinks.store.tensors import BOOL, FLOAT, INT, STRING


class BatchWriter(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> None: ...


class ParquetWriter:
    """One row group per batch, zstd-compressed."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


class CsvWriter:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pacsv.CSVWriter(str(path), schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


class JsonLinesWriter:
    """One JSON object per line; times in RFC 3339."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._file = path.open("wb")

    def write(self, batch: pa.RecordBatch) -> None:
        self._file.writelines(orjson.dumps(row) + b"\n" for row in batch.to_pylist())

    def close(self) -> None:
        self._file.close()


WRITERS: dict[str, type[ParquetWriter] | type[CsvWriter] | type[JsonLinesWriter]] = {
    "parquet": ParquetWriter,
    "csv": CsvWriter,
    "jsonl": JsonLinesWriter,
}


def _coerce(values: list[Any], kind: str) -> list[Any]:
    """Values as the column's kind: text for a string column, numbers widened, bools as 0/1 for ints."""
    if kind == STRING:
        return [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values]
    if kind == FLOAT:
        return [float(v) if isinstance(v, int | float) else None for v in values]
    if kind == INT:
        return [int(v) if isinstance(v, int | float) and float(v).is_integer() else None for v in values]
    if kind == BOOL:
        return [bool(v) if isinstance(v, bool) else None for v in values]
    return values


def record_batch(
    rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], schema: pa.Schema
) -> pa.RecordBatch:
    """Rows as one Arrow batch in the layout's column order; a missing value is null."""
    arrays = [
        _array([row.get(name) for row in rows], kind, field.type)
        for (name, kind), field in zip(columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _array(values: list[Any], kind: str, arrow_type: pa.DataType) -> pa.Array:
    """Arrow converts values of the column's kind at C speed; only mixed columns are coerced first."""
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(_coerce(values, kind), type=arrow_type)
