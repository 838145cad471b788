"""Write every monitoring file: dashboards, Grafana provisioning, the rule file, Kubernetes manifests.

The output is deterministic (sorted keys, fixed ids) so that committed copies can be compared with
what this writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from infersight.monitoring import alerts, kubernetes, provisioning
from infersight.monitoring.drift import drift
from infersight.monitoring.feedback import feedback
from infersight.monitoring.outliers import outliers
from infersight.monitoring.overview import overview
from infersight.monitoring.promql import API_JOB, INGEST_JOB, WORKER_JOB

#: Each dashboard's builder; the file is named after the uid.
DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (overview, drift, outliers, feedback)
RULES_HEADER = "# Written by `infersight dashboards --rules`; edit infersight/monitoring/alerts.py instead.\n"
MANIFEST_HEADER = "# Written by `infersight dashboards --kubernetes`; edit infersight/monitoring/ instead.\n"


def _number_panels(model: dict[str, Any]) -> None:
    """Grafana wants a unique id per panel (rows included); the builders leave them unset."""
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number


def dashboard_models() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana's JSON model, by uid."""
    built: dict[str, dict[str, Any]] = {}
    for make in DASHBOARDS:
        model: dict[str, Any] = json.loads(json.dumps(make().build(), cls=JSONEncoder))
        _number_panels(model)
        built[model["uid"]] = model
    return built


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _yaml(data: Any, header: str = "") -> str:
    # Wide lines: PromQL expressions stay on one line each, as people read and grep them.
    return header + yaml.safe_dump(data, sort_keys=False, width=10_000, allow_unicode=True)


def _yaml_documents(documents: list[dict[str, Any]], header: str) -> str:
    return header + yaml.safe_dump_all(documents, sort_keys=False, width=10_000, allow_unicode=True)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_dashboards(folder: Path, prometheus_url: str, dashboards_path: str) -> list[Path]:
    """``<uid>.json`` per dashboard, and ``provisioning/{datasources,dashboards}/infersight.yaml``."""
    written = [_write(folder / f"{uid}.json", _json(model)) for uid, model in dashboard_models().items()]
    written.append(
        _write(
            folder / "provisioning" / "datasources" / "infersight.yaml",
            _yaml(provisioning.datasources(prometheus_url)),
        )
    )
    written.append(
        _write(
            folder / "provisioning" / "dashboards" / "infersight.yaml",
            _yaml(provisioning.dashboard_providers(dashboards_path)),
        )
    )
    return written


def write_rules(path: Path, windows: alerts.Windows = alerts.PRODUCTION) -> Path:
    """A Prometheus rule file (``rule_files:``), checked by ``promtool check rules``."""
    return _write(path, _yaml({"groups": alerts.rule_groups(windows)}, RULES_HEADER))


def write_kubernetes(folder: Path) -> list[Path]:
    """``grafana-dashboards.yaml`` (ConfigMaps) and ``prometheus-rule.yaml`` (PrometheusRule)."""
    maps = [kubernetes.dashboard_config_map(uid, model) for uid, model in dashboard_models().items()]
    return [
        _write(folder / "grafana-dashboards.yaml", _yaml_documents(maps, MANIFEST_HEADER)),
        _write(
            folder / "prometheus-rule.yaml",
            _yaml(kubernetes.prometheus_rule(alerts.rule_groups()), MANIFEST_HEADER),
        ),
    ]


def prometheus_config(
    ingest: str, worker: str, api: str | None, rule_file: Path, scrape_seconds: int = 5
) -> dict[str, Any]:
    """A Prometheus configuration scraping the ingest, a worker and the query API (``host:port``)
    under the jobs the dashboards and alert rules name, with infersight's rules loaded."""
    interval = f"{scrape_seconds}s"
    jobs = [(INGEST_JOB, ingest), (WORKER_JOB, worker), *([(API_JOB, api)] if api else [])]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rule_file)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in jobs
        ],
    }


def write_local_monitoring(
    folder: Path, ingest: str, worker: str, api: str | None, prometheus_url: str
) -> Path:
    """What ``infersight up`` gives its Prometheus and a Grafana beside it, under ``folder``.

    ``prometheus.yaml`` and ``rules.yaml`` for Prometheus; ``grafana/`` with the dashboards and
    provisioning whose provider reads that very folder. Returns the Prometheus configuration file.
    """
    rules = write_rules(folder / "rules.yaml")
    grafana = (folder / "grafana").resolve()
    write_dashboards(grafana, prometheus_url, str(grafana))
    return _write(folder / "prometheus.yaml", _yaml(prometheus_config(ingest, worker, api, rules)))
