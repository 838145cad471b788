"""The HTML report: the per-phase table and plots, images inlined so the file stands alone."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from infersight.demo.phases import Phase
from infersight.demo.results import PhaseResult, Stored, drift_phase

COLOURS = {"normal": "#4c78a8", "drift": "#e45756", "outliers": "#f58518", "adversarial": "#b279a2"}


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _drift_plot(detections: Sequence[dict[str, Any]], phase_of: dict[str, str]) -> str:
    import matplotlib.pyplot as plt

    drift = sorted((d for d in detections if d["kind"] == "drift"), key=lambda d: d["window"]["end"] or "")
    names = sorted({d["detector"] for d in drift})
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(5.5 * max(1, len(names)), 3.2))
    for axis, name in zip(list(getattr(axes, "flat", [axes])), names, strict=False):
        points = [d for d in drift if d["detector"] == name]
        online = all(d["p_value"] is None for d in points)
        values = [d["statistic"] if online else d["p_value"] for d in points]
        colours = [COLOURS.get(drift_phase(d, phase_of) or "", "grey") for d in points]
        axis.scatter(range(1, len(points) + 1), values, c=colours, s=40)
        axis.plot(range(1, len(points) + 1), values, color="lightgrey", zorder=0)
        threshold = points[0]["threshold"] if points else None
        if threshold is not None:
            axis.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
            axis.legend(loc="best", fontsize=8)
        if not online:
            axis.set_yscale("log")
        axis.set_title(f"{name}: {'test statistic (max per window)' if online else 'p-value'} per window")
        axis.set_xlabel("window")
    return _png(figure)


def _score_plot(planned: dict[str, tuple[str, str | None]], stored: dict[str, Stored]) -> str:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(16, 3.2))
    panels = (("wine", "outlier", "IForest score (wine)"), ("digits", "outlier", "OutlierVAE score (digits)"),
              ("digits", "adversarial", "AdversarialAE score (digits)"))  # fmt: skip
    for axis, (model, kind, title) in zip(axes, panels, strict=True):
        groups: dict[str, list[float]] = {}
        for request_id, (name, injected) in planned.items():
            row = stored.get(request_id)
            score = None if row is None else row.outlier_score if kind == "outlier" else row.adversarial_score
            if name != model or score is None:
                continue
            groups.setdefault(injected or "clean", []).append(score)
        for label, scores in sorted(groups.items()):
            axis.hist(scores, bins=30, alpha=0.6, label=f"{label} ({len(scores)})")
        axis.set_title(title)
        axis.set_yscale("log")
        axis.legend(fontsize=8)
    return _png(figure)


def _accuracy_plot(results: Sequence[PhaseResult]) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2))
    names = [r.phase.name for r in results]
    values = [(r.accuracy or 0.0) * 100 for r in results]
    axis.bar(names, values, color=[COLOURS.get(n, "grey") for n in names])
    for index, result in enumerate(results):
        axis.text(index, values[index] + 1, f"{result.correct}/{result.labelled}", ha="center", fontsize=8)
    axis.set_ylim(0, 110)
    axis.set_ylabel("accuracy from feedback (%)")
    return _png(figure)


def write_report(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str],
    results: Sequence[PhaseResult],
    phases: Sequence[Phase],
    detections: Sequence[dict[str, Any]],
    stored: dict[str, Stored],
    notes: Sequence[str],
) -> None:
    """Write the report to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    phase_of = {p.request_id: phase.name for phase in phases for p in phase.inferences}
    planned = {p.request_id: (p.model.name, p.injected) for phase in phases for p in phase.inferences}
    table = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    images = [
        ("Drift over time (colour: the phase of the window)", _drift_plot(detections, phase_of)),
        ("Outlier and adversarial score distributions, injected against clean", _score_plot(planned, stored)),
        ("Accuracy per phase, from the feedback labels", _accuracy_plot(results)),
    ]
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        for title, data in images
    )
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>infersight demo</title><style>"
        "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right} img{max-width:100%}</style></head>"
        f"<body><h1>infersight demo — {datetime.now().astimezone():%Y-%m-%d %H:%M}</h1>"
        f"<table><tr>{table}</tr>{body}</table><ul>{items}</ul>{figures}</body></html>",
        encoding="utf-8",
    )
