"""The live view: the current phase, events sent, and detections as the worker publishes them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from infersight.demo.watch import DetectionWatcher


@dataclass
class Progress:
    """Shared by the sender (which updates it) and the live view (which draws it)."""

    phase: str = "starting"
    detail: str = ""
    sent: Counter[str] = field(default_factory=Counter)
    planned: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)


def render(progress: Progress, watcher: DetectionWatcher | None) -> RenderableType:
    elapsed = time.monotonic() - progress.started
    heading = Text.assemble(
        ("infersight demo ", "bold"),
        (f"{elapsed:5.0f} s  ", "dim"),
        ("phase: ", ""),
        (progress.phase, "bold cyan"),
    )
    if progress.detail:
        heading.append(f"  {progress.detail}", style="dim")
    sent = Table(title="events sent to the ingest", title_justify="left", expand=False)
    sent.add_column("phase")
    sent.add_column("sent", justify="right")
    sent.add_column("planned", justify="right")
    for name, planned in progress.planned.items():
        sent.add_row(name, f"{progress.sent[name]:,}", f"{planned:,}")
    seen = Table(title="detections on the detections topic", title_justify="left", expand=False)
    for column in ("model", "detector", "kind", "events", "detected"):
        seen.add_column(column, justify="right" if column in ("events", "detected") else "left")
    counts: Counter[tuple[str, str, str]] = Counter()
    detected: Counter[tuple[str, str, str]] = Counter()
    for detection in watcher.snapshot() if watcher is not None else []:
        key = (detection["inferenceservice"], detection["detector"], detection["kind"])
        counts[key] += 1
        detected[key] += bool(detection.get("detected"))
    for key in sorted(counts):
        seen.add_row(*key, f"{counts[key]:,}", f"{detected[key]:,}")
    return Group(heading, sent, seen)
