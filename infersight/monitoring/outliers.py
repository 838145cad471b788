"""Outliers & adversarial: how often instances are flagged, their score distributions, the worst models."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import units

from infersight.monitoring.board import Panels, board
from infersight.monitoring.limits import ADVERSARIAL_SHARE, OUTLIER_SHARE
from infersight.monitoring.panels import (
    BAD_COLOR,
    OK_COLOR,
    heatmap_panel,
    query,
    ranking_panel,
    timeseries_panel,
)
from infersight.monitoring.promql import BY_MODEL, DETECTOR, MODEL, MODEL_LEGEND, RANGE, quantile, rate

UID = "infersight-outliers"
LEGEND = "{{inferenceservice}} {{component}} {{endpoint}} {{detector}}"


def share(flagged: str) -> str:
    """Flagged records per record handled, per model and detector, over the rate window."""
    return (
        f"sum by ({BY_MODEL}, detector) ({rate(flagged, DETECTOR)})"
        f" / on ({BY_MODEL}) group_left () sum by ({BY_MODEL}) ({rate('infersight_records_total', MODEL)})"
    )


def _kind(kind: str, counter: str, histogram: str, limit: float) -> Panels:
    return [
        timeseries_panel(
            f"{kind.capitalize()}s/s",
            f"Records flagged as {kind} per second, per model, endpoint and detector.",
            units.RecordsPerSecond,
            [query(f"sum by ({BY_MODEL}, detector) ({rate(counter, DETECTOR)})", LEGEND)],
        ),
        timeseries_panel(
            f"{kind.capitalize()} share of records",
            f"Flagged records as a share of all records of the model. The alert fires above {limit:.0%} "
            "(the dashed line).",
            units.PercentUnit,
            [query(share(counter), LEGEND)],
            steps=((None, OK_COLOR), (limit, BAD_COLOR)),
            draw_thresholds=True,
        ),
        heatmap_panel(
            f"{kind.capitalize()} score distribution",
            f"How the {kind} scores of scored instances spread, per rate window (darker: more instances). "
            "Mass moving up means traffic the detector finds stranger; each detector's threshold is on its "
            "own scale.",
            units.Short,
            query(
                f"sum by (le) ({rate(histogram + '_bucket', DETECTOR)})",
                "{{le}}",
                heatmap_format=True,
            ),
        ),
        timeseries_panel(
            f"{kind.capitalize()} score p50 and p99",
            f"Median and 99th percentile of the {kind} score, per detector.",
            units.Short,
            [
                query(quantile(0.5, histogram, DETECTOR, "detector"), "{{detector}} p50"),
                query(quantile(0.99, histogram, DETECTOR, "detector"), "{{detector}} p99"),
            ],
            min_value=None,
        ),
        ranking_panel(
            f"Top models by {kind}s",
            f"The ten models and endpoints with the most records flagged as {kind} over the dashboard's "
            "time range.",
            units.Short,
            [
                query(
                    f"topk(10, sum by ({BY_MODEL}) (increase({counter}{{{DETECTOR}}}[{RANGE}])))",
                    MODEL_LEGEND,
                    instant=True,
                )
            ],
        ),
    ]


def outliers() -> Dashboard:
    return board(
        UID,
        "infersight / Outliers & adversarial",
        "Outlier and adversarial detectors per model: flag rates, score distributions, the worst models.",
        [
            (
                "Outliers",
                _kind("outlier", "infersight_outliers_total", "infersight_outlier_score", OUTLIER_SHARE),
            ),
            (
                "Adversarial",
                _kind(
                    "adversarial",
                    "infersight_adversarial_total",
                    "infersight_adversarial_score",
                    ADVERSARIAL_SHARE,
                ),
            ),
        ],
        detector_metric="infersight_detector_duration_seconds_count",
    )
