"""Detector metrics as the contract names them: model and revision labels, ``detector``, ``feature``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infersight.metriclabels import RecentRevisions
from infersight.records import DRIFT, OUTLIER, REVISION_LABELS, Detection, ModelRef, Score

DETECTOR_LABELS = (*REVISION_LABELS, "detector")
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SCORE_BUCKETS = (-1, -0.5, -0.25, -0.1, 0, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 1000, 10000)


class DetectorMetrics:
    """Model metrics of each detector, labelled by revision: the scored record's, or for tests over
    windows the one revision the detector watches ("" when it watches them all)."""

    def __init__(
        self, registry: CollectorRegistry, max_features: int, revisions: RecentRevisions | None = None
    ) -> None:
        self.max_features = max_features
        self.revisions = revisions or RecentRevisions()
        series = self.revisions.series
        self.outliers = series(
            Counter(
                "infersight_outliers_total",
                "Records flagged as outliers.",
                DETECTOR_LABELS,
                registry=registry,
            )
        )
        self.outlier_score = series(
            Histogram(
                "infersight_outlier_score",
                "Outlier scores of scored instances (higher is more unusual).",
                DETECTOR_LABELS,
                buckets=SCORE_BUCKETS,
                registry=registry,
            )
        )
        self.adversarial = series(
            Counter(
                "infersight_adversarial_total",
                "Records flagged as adversarial.",
                DETECTOR_LABELS,
                registry=registry,
            )
        )
        self.adversarial_score = series(
            Histogram(
                "infersight_adversarial_score",
                "Adversarial scores of scored instances.",
                DETECTOR_LABELS,
                buckets=SCORE_BUCKETS,
                registry=registry,
            )
        )
        self.drift_detected = series(
            Gauge(
                "infersight_drift_detected",
                "1 when the latest drift test found drift, else 0.",
                DETECTOR_LABELS,
                registry=registry,
            )
        )
        self.drift_p_value = series(
            Gauge(
                "infersight_drift_p_value",
                "p-value of the latest drift test (the smallest feature's for feature-wise tests).",
                DETECTOR_LABELS,
                registry=registry,
            )
        )
        self.drift_distance = series(
            Gauge(
                "infersight_drift_distance",
                "Distance or test statistic of the latest drift test.",
                DETECTOR_LABELS,
                registry=registry,
            )
        )
        self.feature_p_value = series(
            Gauge(
                "infersight_drift_feature_p_value",
                "p-value per feature of the latest feature-wise drift test.",
                (*DETECTOR_LABELS, "feature"),
                registry=registry,
            )
        )
        self.feature_distance = series(
            Gauge(
                "infersight_drift_feature_distance",
                "Distance per feature of the latest feature-wise drift test.",
                (*DETECTOR_LABELS, "feature"),
                registry=registry,
            )
        )
        self.drift_tests = series(
            Counter(
                "infersight_drift_tests_total",
                "Drift tests run; drift is true or false.",
                (*DETECTOR_LABELS, "drift"),
                registry=registry,
            )
        )
        self.duration = series(
            Histogram(
                "infersight_detector_duration_seconds",
                "Time spent in one detector call (a batch of instances or a window).",
                DETECTOR_LABELS,
                buckets=DURATION_BUCKETS,
                registry=registry,
            )
        )
        self.errors = series(
            Counter(
                "infersight_detector_errors_total",
                "Records or windows a detector could not score, by reason.",
                (*DETECTOR_LABELS, "reason"),
                registry=registry,
            )
        )

    def start(self, model: ModelRef, revision: str, detector: str, kind: str) -> None:
        """Show a detector's counters at zero from its first use, so that its first flag is an increase.

        A scorer that watches every revision labels its counts with each record's revision: those
        series start with the revision's first scored batch, in :meth:`scored`.
        """
        labels = (*model.metric_labels, revision, detector)
        if kind == DRIFT:
            for drift in ("true", "false"):
                self.drift_tests(*labels, drift)
        elif revision:
            (self.outliers if kind == OUTLIER else self.adversarial)(*labels)

    def scored(self, model: ModelRef, revision: str, score: Score) -> None:
        """One record's score, under the revision that served the record."""
        labels = (*self.revisions.labels(model.metric_labels, revision), score.detector)
        histogram = self.outlier_score if score.kind == OUTLIER else self.adversarial_score
        child = histogram(*labels)
        for value in score.scores:
            child.observe(value)
        flagged = (self.outliers if score.kind == OUTLIER else self.adversarial)(*labels)
        if score.flagged:
            flagged.inc()

    def drift(self, detection: Detection) -> None:
        labels = (*detection.model.metric_labels, detection.revision, detection.detector)
        self.drift_tests(*labels, str(detection.detected).lower()).inc()
        self.drift_detected(*labels).set(1 if detection.detected else 0)
        if detection.p_value is not None:
            self.drift_p_value(*labels).set(detection.p_value)
        if detection.statistic is not None:
            self.drift_distance(*labels).set(detection.statistic)
        shown = detection.features[: self.max_features]
        for feature, value in zip(shown, detection.feature_p_values, strict=False):
            self.feature_p_value(*labels, feature).set(value)
        for feature, value in zip(shown, detection.feature_statistics, strict=False):
            self.feature_distance(*labels, feature).set(value)
