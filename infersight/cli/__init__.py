"""The ``infersight`` command."""

from __future__ import annotations

from infersight.cli.app import app, main

__all__ = ["app", "main"]
