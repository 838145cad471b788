"""The numbers the alert rules fire at; the dashboards draw the same lines, so a red line means an alert."""

from __future__ import annotations

#: Share of a model's records flagged by one outlier detector.
OUTLIER_SHARE = 0.05
#: Share of a model's records flagged by one adversarial detector.
ADVERSARIAL_SHARE = 0.01
#: Share of requests the ingest refuses (any reason).
REJECTED_SHARE = 0.01
#: 99th percentile of the event lag, seconds.
EVENT_LAG_P99_SECONDS = 60.0
#: p-value under which most drift tests call drift (each detector has its own; this is the line drawn).
DRIFT_P_VALUE = 0.05
#: Accuracy under which the Feedback dashboard turns red.
ACCURACY = 0.8
#: Age of the oldest event in an ingest's spool, seconds: Kafka has not taken events for this long.
SPOOL_AGE_SECONDS = 60.0
