"""Prometheus alert rules for infersight, as data: the rule file and the PrometheusRule come from here.

Each rule keeps its ``signal`` (the measured series) apart from the condition, so that a test can
check that every signal has data before checking which alerts fire. ``Windows`` holds the time
spans; a test copy shortens them and the hold times without changing what the rules compute.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from infersight.monitoring.limits import (
    ADVERSARIAL_SHARE,
    EVENT_LAG_P99_SECONDS,
    OUTLIER_SHARE,
    REJECTED_SHARE,
    SPOOL_AGE_SECONDS,
)
from infersight.monitoring.promql import API_JOB, BY_MODEL, INGEST_JOB, WORKER_JOB

GROUP = "infersight"


@dataclass(frozen=True)
class Windows:
    """Rate windows and hold times; the defaults are for production."""

    #: Window of every rate().
    rate: str = "5m"
    #: A model is silent after this long without records...
    quiet: str = "15m"
    #: ...when it had records within this span.
    history: str = "6h"
    #: Replaces every rule's ``for`` when set (a test uses ``0s``).
    hold: str | None = None


PRODUCTION = Windows()


@dataclass(frozen=True)
class Rule:
    alert: str
    signal: str
    condition: str
    hold: str
    severity: str
    summary: str
    description: str

    @property
    def expr(self) -> str:
        return f"{self.signal} {self.condition}"


def _share(counter: str, window: str) -> str:
    """Flagged records per record, per model and detector."""
    return (
        f"sum by ({BY_MODEL}, detector) (rate({counter}[{window}]))"
        f" / on ({BY_MODEL}) group_left () "
        f"sum by ({BY_MODEL}) (rate(infersight_records_total[{window}]))"
    )


#: What names one canary: the model and the two revisions compared.
CANARY = "namespace, inferenceservice, component, baseline, candidate"


def rules(windows: Windows = PRODUCTION) -> list[Rule]:
    """Every alert rule, in the order the rule file lists them."""
    w = windows.rate
    model = (
        "{{ $labels.namespace }}/{{ $labels.inferenceservice }}"
        "{{ if $labels.component }} {{ $labels.component }}{{ end }} ({{ $labels.endpoint }})"
    )
    built = [
        Rule(
            alert="InfersightDriftDetected",
            signal=f"max by ({BY_MODEL}, detector) (infersight_drift_detected)",
            condition="== 1",
            hold="1m",
            severity="warning",
            summary=f"Drift detected on {model} by {{{{ $labels.detector }}}}",
            description=(
                "The latest test of drift detector {{ $labels.detector }} found that recent inputs of "
                f"{model} no longer look like its reference data. Open the infersight / Drift dashboard to "
                "see which features moved; `infersight export` gives the recent payloads for retraining."
            ),
        ),
        Rule(
            alert="InfersightOutlierRateHigh",
            signal=_share("infersight_outliers_total", w),
            condition=f"> {OUTLIER_SHARE}",
            hold="10m",
            severity="warning",
            summary=f"Many outliers on {model}",
            description=(
                "{{ $value | humanizePercentage }} of the records of "
                f"{model} were flagged by outlier detector {{{{ $labels.detector }}}} over the last {w} "
                f"(threshold {OUTLIER_SHARE:.0%})."
            ),
        ),
        Rule(
            alert="InfersightAdversarialRateHigh",
            signal=_share("infersight_adversarial_total", w),
            condition=f"> {ADVERSARIAL_SHARE}",
            hold="5m",
            severity="critical",
            summary=f"Adversarial inputs on {model}",
            description=(
                "{{ $value | humanizePercentage }} of the records of "
                f"{model} were flagged by adversarial detector {{{{ $labels.detector }}}} over the last "
                f"{w} (threshold {ADVERSARIAL_SHARE:.0%}). Someone may be probing the model."
            ),
        ),
        Rule(
            alert="InfersightIngestRejecting",
            signal=(
                f"sum by (reason) (rate(infersight_ingest_rejected_total[{w}]))"
                f" / on () group_left () (sum(rate(infersight_ingest_rejected_total[{w}]))"
                f" + sum(rate(infersight_ingest_events_total[{w}])))"
            ),
            condition=f"> {REJECTED_SHARE}",
            hold="5m",
            severity="warning",
            summary="The ingest refuses requests: {{ $labels.reason }}",
            description=(
                "{{ $value | humanizePercentage }} of the requests to the ingest over the last "
                f"{w} were refused with reason {{{{ $labels.reason }}}} (threshold {REJECTED_SHARE:.0%}). "
                "kafka_unavailable means neither Kafka nor the spool takes events (a logger that never "
                "retries loses them); the other reasons "
                "point at a client sending what the ingest cannot accept."
            ),
        ),
        Rule(
            alert="InfersightIngestSpooling",
            signal="max by (instance) (infersight_ingest_spool_oldest_age_seconds)",
            condition=f"> {SPOOL_AGE_SECONDS:g}",
            hold="5m",
            severity="warning",
            summary="The ingest at {{ $labels.instance }} keeps events on its disk: Kafka does not take them",
            description=(
                "The oldest event in the spool of the ingest at {{ $labels.instance }} has waited "
                "{{ $value | humanizeDuration }} for Kafka. Events are acknowledged from the pod's disk "
                "and drained to Kafka once it answers; past ingest.spool.max_bytes the ingest refuses "
                "with 503. Bring Kafka back before the volume fills."
            ),
        ),
        Rule(
            alert="InfersightEventLagHigh",
            signal=(
                f"histogram_quantile(0.99, sum by (le, {BY_MODEL}) "
                f"(rate(infersight_event_lag_seconds_bucket[{w}])))"
            ),
            condition=f"> {EVENT_LAG_P99_SECONDS:g}",
            hold="10m",
            severity="warning",
            summary=f"Events of {model} reach the workers late",
            description=(
                "The 99th percentile of the time from event time to a worker handling it is "
                f"{{{{ $value | humanizeDuration }}}} for {model} (threshold {EVENT_LAG_P99_SECONDS:g} s). "
                "The workers are behind (add workers, up to the partitions) or the loggers deliver late."
            ),
        ),
        Rule(
            alert="InfersightModelSilent",
            signal=f"sum by ({BY_MODEL}) (increase(infersight_records_total[{windows.history}]))",
            condition=(
                f"> 0 unless on ({BY_MODEL}) "
                f"sum by ({BY_MODEL}) (increase(infersight_records_total[{windows.quiet}])) > 0"
            ),
            hold="0m",
            severity="warning",
            summary=f"No traffic from {model}",
            description=(
                f"{model} had records in the last {windows.history} but none in the last {windows.quiet}. "
                "The model, its logger or the path to the ingest may be down."
            ),
        ),
        Rule(
            alert="InfersightDeadLettersGrowing",
            signal=f"sum by (reason) (increase(infersight_deadletters_total[{w}]))",
            # A reason's first dead letters create its series, and increase() cannot see a series'
            # first value: a series that is new within the window counts as growing too.
            condition=(
                "> 0 or (sum by (reason) (infersight_deadletters_total)"
                f" unless sum by (reason) (infersight_deadletters_total offset {w}))"
            ),
            hold="1m",
            severity="warning",
            summary="Events go to the dead-letter topic: {{ $labels.reason }}",
            description=(
                "{{ $value | humanize }} events went to the dead-letter topic over the last "
                f"{w} with reason {{{{ $labels.reason }}}}. Each carries the reason and its origin in "
                "headers: read them from the dead-letter topic."
            ),
        ),
        Rule(
            alert="InfersightCanaryRollBack",
            signal=f"min by ({CANARY}) (infersight_canary_verdict)",
            condition="== -1",
            hold="5m",
            severity="warning",
            summary=(
                "Canary {{ $labels.candidate }} of {{ $labels.namespace }}/{{ $labels.inferenceservice }} "
                "differs from {{ $labels.baseline }}: roll back"
            ),
            description=(
                "The latest windows of the canary analysis all found revision {{ $labels.candidate }} "
                "different from {{ $labels.baseline }} (inputs, predictions, outlier rate or accuracy). "
                "`infersight canary --model {{ $labels.inferenceservice }}` shows each window and why."
            ),
        ),
        Rule(
            alert="InfersightTargetDown",
            signal=f'up{{job=~"{INGEST_JOB}|{WORKER_JOB}|{API_JOB}"}}',
            condition="== 0",
            hold="5m",
            severity="critical",
            summary="{{ $labels.job }} at {{ $labels.instance }} does not answer scrapes",
            description=(
                "Prometheus could not scrape {{ $labels.job }} at {{ $labels.instance }} for 5 minutes: "
                "the process is down or unreachable."
            ),
        ),
    ]
    if windows.hold is None:
        return built
    return [replace(rule, hold=windows.hold) for rule in built]


def rule_groups(windows: Windows = PRODUCTION) -> list[dict[str, Any]]:
    """The ``groups`` of a Prometheus rule file (and of a PrometheusRule's spec)."""
    return [
        {
            "name": GROUP,
            "rules": [
                {
                    "alert": rule.alert,
                    "expr": rule.expr,
                    "for": rule.hold,
                    "labels": {"severity": rule.severity},
                    "annotations": {
                        "summary": rule.summary,
                        "description": rule.description,
                    },
                }
                for rule in rules(windows)
            ],
        }
    ]
