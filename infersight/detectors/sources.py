"""Where detectors and reference data come from: local paths or any fsspec URI (``s3://``, ``gs://``).

Remote saved detectors are copied once into a cache folder named after the URI, and loaded from
there by alibi-detect, which reads local files only.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import fsspec
import numpy as np


class SourceError(Exception):
    """A URI that cannot be read; the message says why."""


def local_path(uri: str) -> Path | None:
    """The filesystem path of a ``file://`` URI or a plain path; None for remote URIs."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri).expanduser()
    return None


def fetch_folder(uri: str, cache_dir: Path, storage_options: dict[str, Any]) -> Path:
    """A local folder holding the files under ``uri``: itself when local, else a cached copy."""
    path = local_path(uri)
    if path is not None:
        if not path.is_dir():
            raise SourceError(f"{path} is not a folder")
        return path
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    target = cache_dir / digest
    if (target / ".complete").exists():
        return target
    partial = cache_dir / f"{digest}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        fs, root = fsspec.core.url_to_fs(uri, **storage_options)
        files = [name for name in fs.find(root) if not name.endswith("/")]
        if not files:
            raise SourceError("no files there")
        base = root.rstrip("/") + "/"
        for name in files:
            destination = partial / name[len(base) :]
            destination.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(name, str(destination))
    except SourceError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as exc:  # fsspec backends raise their own types (botocore, gcsfs, OSError)
        shutil.rmtree(partial, ignore_errors=True)
        raise SourceError(f"cannot fetch: {type(exc).__name__}: {exc}") from exc
    (partial / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


#: In a versioned detector folder, the file that names the version to load (``<uri>/<version>/``).
LATEST = "LATEST"


def latest_version(uri: str, storage_options: dict[str, Any]) -> str | None:
    """The version ``<uri>/LATEST`` names; None when ``uri`` is a saved detector itself."""
    try:
        fs, root = fsspec.core.url_to_fs(uri, **storage_options)
        marker = root.rstrip("/") + "/" + LATEST
        if not fs.exists(marker):
            return None
        version = str(fs.cat_file(marker).decode()).strip()
    except Exception as exc:  # the backends' own error types
        raise SourceError(f"cannot read {LATEST}: {type(exc).__name__}: {exc}") from exc
    if not version or "/" in version or version.startswith("."):
        raise SourceError(f"{LATEST} names no version folder ({version!r})")
    return version


def publish_version(folder: Path, uri: str, version: str, storage_options: dict[str, Any]) -> str:
    """Copy a saved detector to ``<uri>/<version>/``, then point ``<uri>/LATEST`` at it.

    LATEST is written last, so a worker never loads a version that is still being copied.
    """
    try:
        fs, root = fsspec.core.url_to_fs(uri, **storage_options)
        base = root.rstrip("/")
        target = f"{base}/{version}"
        fs.makedirs(target, exist_ok=True)
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                destination = f"{target}/{path.relative_to(folder).as_posix()}"
                fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
                fs.put_file(str(path), destination)
        fs.pipe_file(f"{base}/{LATEST}", (version + "\n").encode())
    except Exception as exc:  # as above
        raise SourceError(f"cannot publish to {uri}: {type(exc).__name__}: {exc}") from exc
    return f"{uri.rstrip('/')}/{version}"


def read_bytes(uri: str, storage_options: dict[str, Any]) -> bytes:
    try:
        with fsspec.open(uri, "rb", **storage_options) as handle:
            data: bytes = handle.read()
            return data
    except Exception as exc:  # as above: the backends' own error types
        raise SourceError(f"cannot read: {type(exc).__name__}: {exc}") from exc


def read_reference(uri: str, storage_options: dict[str, Any]) -> np.ndarray[Any, Any]:
    """Reference data as an array of instances: ``.npy`` (no pickles), ``.parquet`` or ``.csv``.

    Parquet and CSV give one column per feature; a CSV may have a header row of names.
    """
    suffix = Path(urlparse(uri).path).suffix.lower()
    data = read_bytes(uri, storage_options)
    try:
        if suffix == ".npy":
            return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(data))
            return np.column_stack([column.to_numpy(zero_copy_only=False) for column in table.columns])
        if suffix == ".csv":
            text = data.decode("utf-8")
            first = text.split("\n", 1)[0]
            skip = 0 if _numeric_row(first) else 1
            return np.atleast_2d(np.loadtxt(io.StringIO(text), delimiter=",", skiprows=skip, ndmin=2))
    except (ValueError, OSError) as exc:
        raise SourceError(f"not readable as {suffix}: {exc}") from exc
    raise SourceError(f"unknown reference format {suffix or '(none)'!r}; use .npy, .parquet or .csv")


def _numeric_row(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True
