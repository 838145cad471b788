"""Online drift detectors' state, saved under ``detections.state_uri`` and restored on start.

Each detector on each model (and endpoint) has its own folder there. A local path is written
in place (through a temporary folder, so a crash never leaves half a state); any other fsspec
URI (``s3://``, ``gs://``) is written through a local temporary copy, which lets a worker on
another host carry on after a rebalance.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import fsspec

from infersight.detectors.sources import local_path


class StateStore:
    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.root = local_path(uri)
        self.storage_options = storage_options or {}

    def _relative(self, parts: tuple[str, ...]) -> str:
        return "/".join(part.replace("/", "_") or "_" for part in parts)

    def save(self, detector: Any, parts: tuple[str, ...]) -> None:
        """Write the detector's state for the slot named by ``parts`` (namespace, service, endpoint, name)."""
        relative = self._relative(parts)
        if self.root is not None:
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".saving-"))
            detector.save_state(staging)
            old = target.with_name(target.name + ".old")
            if target.exists():
                target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
            return
        with tempfile.TemporaryDirectory() as folder:
            detector.save_state(folder)
            fs, root = fsspec.core.url_to_fs(f"{self.uri}/{relative}", **self.storage_options)
            fs.put(folder.rstrip("/") + "/", root, recursive=True)

    def restore(self, detector: Any, parts: tuple[str, ...]) -> bool:
        """Load the saved state into ``detector``; False when there is none."""
        relative = self._relative(parts)
        if self.root is not None:
            source = self.root / relative
            if not source.is_dir() or not any(source.iterdir()):
                return False
            detector.load_state(source)
            return True
        fs, root = fsspec.core.url_to_fs(f"{self.uri}/{relative}", **self.storage_options)
        if not fs.exists(root):
            return False
        with tempfile.TemporaryDirectory() as folder:
            fs.get(root.rstrip("/") + "/", folder, recursive=True)
            detector.load_state(folder)
        return True
