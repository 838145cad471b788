"""Drift: which detectors call drift now, how strongly, and which features moved."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import units

from infersight.monitoring.board import Panels, board
from infersight.monitoring.limits import DRIFT_P_VALUE
from infersight.monitoring.panels import (
    BAD_COLOR,
    OK_COLOR,
    WARN_COLOR,
    query,
    ranking_panel,
    state_panel,
    timeseries_panel,
)
from infersight.monitoring.promql import BY_MODEL, DETECTOR, RANGE, quantile, rate

UID = "infersight-drift"
DETECTOR_LEGEND = "{{inferenceservice}} {{component}} {{endpoint}} {{detector}}"
P_VALUE_STEPS = ((None, BAD_COLOR), (DRIFT_P_VALUE, OK_COLOR))


def _state() -> Panels:
    return [
        state_panel(
            "Drift state per detector",
            "Outcome of each drift detector's latest test, per model and endpoint: red while the latest "
            "window drifted from the reference data, green while it did not. A batch detector tests once "
            "per closed window, an online one after every instance.",
            [
                query(
                    f"max by ({BY_MODEL}, detector) (infersight_drift_detected{{{DETECTOR}}})",
                    DETECTOR_LEGEND,
                )
            ],
            [("0", "no drift", OK_COLOR), ("1", "drift", BAD_COLOR)],
        ),
        timeseries_panel(
            "p-value of the latest test",
            "p-value of each detector's latest test (the smallest feature's for feature-wise tests such as "
            f"KSDrift). Low means drift; the dashed line is {DRIFT_P_VALUE}, each detector uses its own "
            "p_val.",
            units.Short,
            [query(f"infersight_drift_p_value{{{DETECTOR}}}", DETECTOR_LEGEND)],
            steps=P_VALUE_STEPS,
            draw_thresholds=True,
            max_value=1,
        ),
        timeseries_panel(
            "Distance of the latest test",
            "The detector's distance or test statistic (MMD², LSDD, KS statistic, ...): how far the window "
            "is from the reference data, on the detector's own scale.",
            units.Short,
            [query(f"infersight_drift_distance{{{DETECTOR}}}", DETECTOR_LEGEND)],
        ),
        timeseries_panel(
            "Drift tests/s by outcome",
            "Drift tests run per second, split by outcome (drift=true or false).",
            units.OpsPerSecond,
            [
                query(
                    f"sum by (inferenceservice, component, endpoint, detector, drift) "
                    f"({rate('infersight_drift_tests_total', DETECTOR)})",
                    "{{inferenceservice}} {{component}} {{endpoint}} {{detector}} drift={{drift}}",
                )
            ],
        ),
        ranking_panel(
            "Share of tests that found drift",
            "Over the dashboard's time range, the share of each detector's tests that found drift.",
            units.PercentUnit,
            [
                query(
                    f"sum by ({BY_MODEL}, detector) "
                    f'(increase(infersight_drift_tests_total{{{DETECTOR}, drift="true"}}[{RANGE}]))'
                    f" / sum by ({BY_MODEL}, detector) "
                    f"(increase(infersight_drift_tests_total{{{DETECTOR}}}[{RANGE}]))",
                    DETECTOR_LEGEND,
                    instant=True,
                )
            ],
            steps=((None, OK_COLOR), (0.01, WARN_COLOR), (0.5, BAD_COLOR)),
        ),
    ]


def _features() -> Panels:
    return [
        timeseries_panel(
            "p-value per feature",
            "Feature-wise detectors (KSDrift, CVMDrift, ChiSquareDrift, TabularDrift, FETDrift) test each "
            "feature on its own: the features whose p-value falls are the ones that moved.",
            units.Short,
            [query(f"infersight_drift_feature_p_value{{{DETECTOR}}}", "{{detector}} {{feature}}")],
            steps=P_VALUE_STEPS,
            draw_thresholds=True,
            max_value=1,
        ),
        ranking_panel(
            "Features with the lowest p-value now",
            "The ten features that drifted most in the latest tests (lowest p-value first).",
            units.Short,
            [
                query(
                    "bottomk(10, min by (detector, feature) "
                    f"(infersight_drift_feature_p_value{{{DETECTOR}}}))",
                    "{{detector}} {{feature}}",
                    instant=True,
                )
            ],
            steps=P_VALUE_STEPS,
        ),
        timeseries_panel(
            "Distance per feature",
            "The per-feature statistic of feature-wise tests (the KS statistic, for instance): the ten "
            "largest now.",
            units.Short,
            [
                query(
                    f"topk(10, max by (detector, feature) (infersight_drift_feature_distance{{{DETECTOR}}}))",
                    "{{detector}} {{feature}}",
                )
            ],
        ),
        timeseries_panel(
            "Detector time p95",
            "95th percentile of one detector call (a window test, or a batch of instances for online "
            "detectors): the cost of each detector in the worker.",
            units.Seconds,
            [
                query(
                    quantile(0.95, "infersight_detector_duration_seconds", DETECTOR, "detector"),
                    "{{detector}}",
                )
            ],
        ),
        timeseries_panel(
            "Detector errors/s by reason",
            "Records or windows a detector could not score (wrong shape, missing tensor, ...), by reason.",
            units.OpsPerSecond,
            [
                query(
                    f"sum by (detector, reason) ({rate('infersight_detector_errors_total', DETECTOR)})",
                    "{{detector}} {{reason}}",
                )
            ],
            steps=((None, OK_COLOR), (0.001, BAD_COLOR)),
        ),
    ]


def drift() -> Dashboard:
    return board(
        UID,
        "infersight / Drift",
        "Drift detectors per model: current state, p-values, distances, and the features that moved.",
        [("Drift per detector", _state()), ("Features and detector cost", _features())],
        detector_metric="infersight_drift_tests_total",
    )
