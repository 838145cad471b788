"""Feedback: how much traffic has ground truth, and how accurate the models are against it."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import units

from infersight.monitoring.board import Panels, board
from infersight.monitoring.limits import ACCURACY
from infersight.monitoring.panels import (
    BAD_COLOR,
    OK_COLOR,
    query,
    stat_panel,
    timeseries_panel,
)
from infersight.monitoring.promql import BY_SERVICE, MODEL, MODEL_LEGEND, RANGE, SERVICE, rate

SERVICE_LEGEND = "{{namespace}}/{{inferenceservice}}"

UID = "infersight-feedback"
ACCURACY_STEPS = ((None, BAD_COLOR), (ACCURACY, OK_COLOR))


def _panels() -> Panels:
    return [
        stat_panel(
            "Accuracy now",
            "Share of labelled classifier inferences whose predicted class was the true label, over every "
            f"label stored so far, per model. Red under {ACCURACY:.0%}.",
            units.PercentUnit,
            [query(f"infersight_model_accuracy{{{MODEL}}}", MODEL_LEGEND)],
            steps=ACCURACY_STEPS,
            width=12,
        ),
        stat_panel(
            "Labelled inferences",
            "Stored inferences that have a label from feedback, per model: what the accuracy is computed "
            "over.",
            units.Short,
            [query(f"infersight_model_labelled_inferences{{{MODEL}}}", MODEL_LEGEND)],
            width=12,
        ),
        timeseries_panel(
            "Accuracy over time",
            "The running accuracy per model as feedback arrives; a fall while the inputs drift is the "
            "signal to retrain.",
            units.PercentUnit,
            [query(f"infersight_model_accuracy{{{MODEL}}}", MODEL_LEGEND)],
            steps=ACCURACY_STEPS,
            draw_thresholds=True,
            max_value=1,
        ),
        timeseries_panel(
            "Labelled share",
            "Feedback events per inference record, per InferenceService (feedback names a request, not "
            "an endpoint), over the dashboard's time range: the share of traffic that gets ground truth.",
            units.PercentUnit,
            [
                query(
                    f"sum by ({BY_SERVICE}) (increase(infersight_feedback_total{{{SERVICE}}}[{RANGE}]))"
                    f" / on ({BY_SERVICE}) sum by ({BY_SERVICE}) "
                    f"(increase(infersight_records_total{{{SERVICE}}}[{RANGE}]))",
                    SERVICE_LEGEND,
                )
            ],
        ),
        timeseries_panel(
            "Feedback/s",
            "Feedback events stored per second per InferenceService; invalid ones name no request or no "
            "label and are skipped; labels applied are stored inferences whose label was set or changed.",
            units.EventsPerSecond,
            [
                query(
                    f"sum by ({BY_SERVICE}) ({rate('infersight_feedback_total', SERVICE)})", SERVICE_LEGEND
                ),
                query(f"sum({rate('infersight_feedback_invalid_total')})", "invalid"),
                query(f"sum({rate('infersight_labels_applied_total')})", "labels applied"),
            ],
        ),
    ]


def feedback() -> Dashboard:
    return board(
        UID,
        "infersight / Feedback",
        "Ground truth from feedback events: how much traffic is labelled, and model accuracy over time.",
        [("Feedback and accuracy", _panels())],
    )
