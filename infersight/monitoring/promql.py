"""Label selectors and windows shared by every dashboard query, so that panels filter alike."""

from __future__ import annotations

#: The dashboards' template variables, in the order Grafana shows them.
MODEL_VARIABLES = ("namespace", "inferenceservice", "component", "endpoint")

#: One deployed model, as the template variables select it.
MODEL = (
    'namespace=~"$namespace", inferenceservice=~"$inferenceservice", component=~"$component", '
    'endpoint=~"$endpoint"'
)

#: The selected InferenceServices, every component and endpoint: feedback names a request, not where it went.
SERVICE = 'namespace=~"$namespace", inferenceservice=~"$inferenceservice"'

#: One detector of the selected models.
DETECTOR = f'{MODEL}, detector=~"$detector"'

#: Grafana's rate window: at least four scrape intervals, whatever the zoom.
RATE = "$__rate_interval"

#: The whole time range the dashboard shows.
RANGE = "$__range"

#: How the model labels are grouped in per-model series.
BY_MODEL = "namespace, inferenceservice, component, endpoint"
BY_SERVICE = "namespace, inferenceservice"

#: Legend of a per-model series: ``namespace/inferenceservice component endpoint``.
MODEL_LEGEND = "{{namespace}}/{{inferenceservice}} {{component}} {{endpoint}}"

#: The scrape jobs the deployment files give the two processes.
INGEST_JOB = "infersight-ingest"
WORKER_JOB = "infersight-worker"
#: The query API's ``/metrics``: the canary verdicts.
API_JOB = "infersight-api"


def rate(metric: str, selector: str = "", window: str = RATE) -> str:
    """``rate(metric{selector}[window])``."""
    return f"rate({metric}{{{selector}}}[{window}])"


def quantile(q: float, histogram: str, selector: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over the rate window, optionally per group."""
    groups = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({groups}) ({rate(histogram + '_bucket', selector)}))"
