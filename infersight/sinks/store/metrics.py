"""The store's Prometheus metrics: rows written, feedback taken in, running accuracy per model."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infersight.records import MODEL_LABELS, ModelRef
from infersight.sinks.store.writer import Accuracy, WriteCounts


class StoreMetrics:
    """Fed with each write's counts by the process that writes (a worker)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.rows = Counter(
            "infersight_store_rows",
            "Rows written to the SQL store (inferences inserted or completed, new detections and feedback).",
            ["table"],
            registry=registry,
        )
        self.feedback = Counter(
            "infersight_feedback",
            "Ground-truth feedback events stored, by the model the event names.",
            MODEL_LABELS,
            registry=registry,
        )
        self.feedback_invalid = Counter(
            "infersight_feedback_invalid",
            "Feedback events skipped because they name no request or no label.",
            registry=registry,
        )
        self.labels = Counter(
            "infersight_labels_applied",
            "Stored inferences whose label was set or changed by feedback.",
            registry=registry,
        )
        self.accuracy = Gauge(
            "infersight_model_accuracy",
            "Share of labelled classifier inferences whose predicted class was the label (0 to 1).",
            MODEL_LABELS,
            registry=registry,
        )
        self.labelled = Gauge(
            "infersight_model_labelled_inferences",
            "Labelled classifier inferences the accuracy is computed over.",
            MODEL_LABELS,
            registry=registry,
        )
        self.duration = Histogram(
            "infersight_store_write_duration_seconds",
            "Time to write one batch to the SQL store.",
            registry=registry,
        )
        for table in ("inferences", "detections", "feedback"):
            self.rows.labels(table=table)

    def set_accuracy(self, accuracy: Mapping[ModelRef, Accuracy]) -> None:
        for model, counts in accuracy.items():
            labels = model.metric_labels
            self.labelled.labels(*labels).set(counts.labelled)
            if counts.labelled:
                self.accuracy.labels(*labels).set(counts.ratio)

    def observe(self, counts: WriteCounts, seconds: float | None = None) -> None:
        """Count one write; ``seconds`` is how long it took, when the caller timed it."""
        self.rows.labels(table="inferences").inc(counts.inferences)
        self.rows.labels(table="detections").inc(counts.detections)
        self.rows.labels(table="feedback").inc(counts.feedback)
        for model, count in counts.feedback_by_model.items():
            self.feedback.labels(*model.metric_labels).inc(count)
        self.feedback_invalid.inc(counts.feedback_invalid)
        self.labels.inc(counts.labelled)
        self.set_accuracy(counts.accuracy)
        if seconds is not None:
            self.duration.observe(seconds)
