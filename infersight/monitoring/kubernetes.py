"""The dashboards and alert rules as Kubernetes objects, for clusters run with the Prometheus Operator.

Dashboards become one ConfigMap each, labelled ``grafana_dashboard: "1"`` so that Grafana's
dashboard sidecar (kube-prometheus-stack, the Grafana Helm chart) loads them; the alert rules become
a PrometheusRule.
"""

from __future__ import annotations

import json
from typing import Any

from infersight.monitoring.provisioning import FOLDER

LABELS = {"app.kubernetes.io/part-of": "infersight", "app.kubernetes.io/component": "monitoring"}


def dashboard_config_map(uid: str, dashboard: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"grafana-dashboard-{uid}",
            "labels": {**LABELS, "grafana_dashboard": "1"},
            "annotations": {"grafana_folder": FOLDER},
        },
        "data": {f"{uid}.json": json.dumps(dashboard, indent=2, sort_keys=True) + "\n"},
    }


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "infersight", "labels": {**LABELS, "role": "alert-rules"}},
        "spec": {"groups": groups},
    }
