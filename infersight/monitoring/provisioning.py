"""Grafana provisioning: the Prometheus data source and a file provider that loads the dashboards."""

from __future__ import annotations

from typing import Any

#: The data source's uid: dashboards select it through their ``datasource`` variable.
DATASOURCE_UID = "infersight-prometheus"
#: Where the provider reads dashboards inside the Grafana container (compose mounts them there).
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/infersight"
FOLDER = "infersight"


def datasources(prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
                # Grafana's $__rate_interval is four times this: keep it at the scrape interval.
                "jsonData": {"timeInterval": "15s", "httpMethod": "POST"},
            }
        ],
    }


def dashboard_providers(path: str = DASHBOARDS_PATH) -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "infersight",
                "orgId": 1,
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }
