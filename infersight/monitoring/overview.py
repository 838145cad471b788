"""Overview: is traffic arriving, is it refused, how late is it, are the workers keeping up."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import units

from infersight.monitoring.board import Panels, board
from infersight.monitoring.limits import EVENT_LAG_P99_SECONDS, REJECTED_SHARE, SPOOL_AGE_SECONDS
from infersight.monitoring.panels import (
    BAD_COLOR,
    OK_COLOR,
    query,
    stat_panel,
    timeseries_panel,
)
from infersight.monitoring.promql import BY_MODEL, INGEST_JOB, MODEL, MODEL_LEGEND, WORKER_JOB, quantile, rate

UID = "infersight-overview"
LAG = "infersight_event_lag_seconds"


def _traffic() -> Panels:
    events = f"sum({rate('infersight_ingest_events_total', MODEL)})"
    rejected = f"sum({rate('infersight_ingest_rejected_total')})"
    return [
        stat_panel(
            "Events received",
            "CloudEvents per second the ingest handed to Kafka (acknowledged, acks=all) for the selected "
            "models.",
            units.EventsPerSecond,
            [query(events, "events/s")],
        ),
        stat_panel(
            "Records handled",
            "Inference records per second the workers produced (a paired request and response is one "
            "record).",
            units.RecordsPerSecond,
            [query(f"sum({rate('infersight_records_total', MODEL)})", "records/s")],
        ),
        stat_panel(
            "Refused share",
            "Requests the ingest refused, as a share of all it answered (every model: a refused request has "
            f"no model). The alert fires above {REJECTED_SHARE:.0%}.",
            units.PercentUnit,
            [query(f"{rejected} / ({rejected} + sum({rate('infersight_ingest_events_total')}))", "refused")],
            steps=((None, OK_COLOR), (REJECTED_SHARE, BAD_COLOR)),
        ),
        stat_panel(
            "Event lag p99",
            "99th percentile of the time from an event's own time (ce-time) to a worker handling it. "
            f"The alert fires above {EVENT_LAG_P99_SECONDS:.0f} s.",
            units.Seconds,
            [query(quantile(0.99, LAG, MODEL), "p99")],
            steps=((None, OK_COLOR), (EVENT_LAG_P99_SECONDS, BAD_COLOR)),
        ),
        timeseries_panel(
            "Events/s by model and endpoint",
            "CloudEvents per second acknowledged by the ingest, per model and endpoint (a request and its "
            "response are two events). Canary and default endpoints are separate series.",
            units.EventsPerSecond,
            [query(f"sum by ({BY_MODEL}) ({rate('infersight_ingest_events_total', MODEL)})", MODEL_LEGEND)],
        ),
        timeseries_panel(
            "Records/s by revision: default beside canary",
            "Inference records per second per revision (read from the pod name in ce-source, else the "
            "endpoint), by how they were completed: paired (request and response), or request/response "
            "alone when the other half never came within the pairing timeout.",
            units.RecordsPerSecond,
            [
                query(
                    f"sum by (inferenceservice, component, revision, mode) "
                    f"({rate('infersight_records_total', MODEL)})",
                    "{{inferenceservice}} {{component}} {{revision}} {{mode}}",
                )
            ],
        ),
        timeseries_panel(
            "Refused requests/s by reason",
            "Requests the ingest answered with an error: malformed (400), unauthorized (401), too_large "
            "(413), unsupported_media_type (415), kafka_unavailable (503, the logger retries).",
            units.RequestsPerSecond,
            [query(f"sum by (reason) ({rate('infersight_ingest_rejected_total')})", "{{reason}}")],
        ),
        timeseries_panel(
            "Event lag",
            "Time from each event's ce-time to a worker handling it: 50th, 95th and 99th percentile. It "
            "grows when workers fall behind or loggers deliver late; the dashed line is the alert's.",
            units.Seconds,
            [
                query(quantile(0.5, LAG, MODEL), "p50"),
                query(quantile(0.95, LAG, MODEL), "p95"),
                query(quantile(0.99, LAG, MODEL), "p99"),
            ],
            steps=((None, OK_COLOR), (EVENT_LAG_P99_SECONDS, BAD_COLOR)),
            draw_thresholds=True,
        ),
    ]


def _health() -> Panels:
    return [
        stat_panel(
            "Processes up",
            "Scrape targets answering, per job: infersight-ingest and infersight-worker. Red at 0.",
            units.Short,
            [query(f'sum by (job) (up{{job=~"{INGEST_JOB}|{WORKER_JOB}"}})', "{{job}}")],
            steps=((None, BAD_COLOR), (1, OK_COLOR)),
            width=8,
        ),
        stat_panel(
            "Pending halves",
            "Requests and responses waiting for their other half in the workers. It stays near the "
            "traffic of one pairing timeout; steady growth means halves that never pair.",
            units.Short,
            [query("sum(infersight_pending_halves)", "pending")],
            width=8,
        ),
        stat_panel(
            "Ingest answer time p99",
            "99th percentile of the time the ingest takes to answer, Kafka acknowledgement included.",
            units.Seconds,
            [query(quantile(0.99, "infersight_ingest_request_duration_seconds", ""), "p99")],
            steps=((None, OK_COLOR), (1, BAD_COLOR)),
            width=8,
        ),
        timeseries_panel(
            "Events in the ingest spool",
            "Events each ingest keeps on its disk because Kafka does not take them: acknowledged already, "
            "drained to Kafka once it answers. Past ingest.spool.max_bytes the ingest answers 503.",
            units.Short,
            [query("sum by (instance) (infersight_ingest_spool_events)", "{{instance}}")],
        ),
        timeseries_panel(
            "Oldest spooled event's age",
            "How long the oldest event in each ingest's spool has waited for Kafka; red past the "
            "InfersightIngestSpooling alert's age.",
            units.Seconds,
            [query("max by (instance) (infersight_ingest_spool_oldest_age_seconds)", "{{instance}}")],
            steps=((None, OK_COLOR), (SPOOL_AGE_SECONDS, BAD_COLOR)),
        ),
        timeseries_panel(
            "Dead letters/s by reason",
            "Events sent to the dead-letter topic: invalid_event (not a CloudEvent), store_refused (a "
            "row the database refused), reply_failed (a detection the reply URL never took). Each "
            "carries its reason in a header; nothing is dropped silently.",
            units.EventsPerSecond,
            [query(f"sum by (reason) ({rate('infersight_deadletters_total')})", "{{reason}}")],
            steps=((None, OK_COLOR), (0.001, BAD_COLOR)),
        ),
        timeseries_panel(
            "Payloads kept raw/s",
            "Request or response bodies of no known protocol, or that do not decode (counted by reason in "
            "infersight_undecodable_payloads_total), per model: stored as they came, so no detector "
            "sees them.",
            units.EventsPerSecond,
            [query(f"sum by ({BY_MODEL}) ({rate('infersight_raw_payloads_total', MODEL)})", MODEL_LEGEND)],
        ),
        timeseries_panel(
            "Other stream events/s by type",
            "Events that are neither request nor response (feedback; unknown types count as other).",
            units.EventsPerSecond,
            [query(f"sum by (type) ({rate('infersight_stream_events_total')})", "{{type}}")],
        ),
        timeseries_panel(
            "Store rows/s by table",
            "Rows the workers wrote to the SQL store; store errors/s are failed writes that were retried.",
            units.RowsPerSecond,
            [
                query(f"sum by (table) ({rate('infersight_store_rows_total')})", "{{table}}"),
                query(f"sum({rate('infersight_store_errors_total')})", "store errors"),
            ],
        ),
        timeseries_panel(
            "Store write time p95",
            "95th percentile of the time one batch takes to reach the SQL store.",
            units.Seconds,
            [query(quantile(0.95, "infersight_store_write_duration_seconds", ""), "p95")],
        ),
    ]


def overview() -> Dashboard:
    return board(
        UID,
        "infersight / Overview",
        "Traffic into infersight per model and endpoint, refusals, event lag and the workers' health.",
        [("Traffic", _traffic()), ("Worker health", _health())],
    )
