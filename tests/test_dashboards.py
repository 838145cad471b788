"""The monitoring files as a user gets them: what `infersight dashboards` writes, and what is committed.

The committed dashboards, provisioning files, rule file and Kubernetes monitoring manifests must be
exactly what the command writes; the dashboards must load into grafana-foundation-sdk's model and
back unchanged; every panel says what it shows and in which unit; every query and rule parses.
The real-Prometheus test (test_prometheus.py) checks that the queries return data.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from infersight.monitoring import alerts
from infersight.monitoring.output import dashboard_models
from infersight.monitoring.promql import MODEL_VARIABLES
from tests.prometheus import promtool, substitute

REPO = Path(__file__).resolve().parent.parent
COMMITTED_RULES = REPO / "deploy" / "prometheus" / "infersight-rules.yaml"
COMMITTED_MONITORING = REPO / "deploy" / "kubernetes" / "base" / "monitoring"
EXAMPLE_VALUES = {
    "namespace": "models",
    "inferenceservice": "iris",
    "component": ".*",
    "endpoint": ".*",
    "detector": ".*",
    "__rate_interval": "1m",
    "__range": "1h",
    "datasource": "prometheus",
}
#: Metrics that carry the model labels: panels on them must follow the dashboard's model selection.
MODEL_METRICS = re.compile(
    r"infersight_(ingest_events_total|records_total|raw_payloads_total|event_lag_seconds_bucket|outliers_total"
    r"|outlier_score_bucket|adversarial_total|adversarial_score_bucket|drift_\w+|detector_\w+|feedback_total"
    r"|model_accuracy|model_labelled_inferences)\b"
)


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in model["panels"] if panel["type"] != "row"]


def written(tmp_path: Path) -> Path:
    """Run the command as a user would, into ``tmp_path``."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "infersight",
            "dashboards",
            "--output",
            str(tmp_path / "dashboards"),
            "--rules",
            str(tmp_path / "rules.yaml"),
            "--kubernetes",
            str(tmp_path / "monitoring"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("wrote ") == 9, result.stderr
    return tmp_path


def test_committed_files_are_what_the_command_writes(tmp_path: Path) -> None:
    out = written(tmp_path)
    fresh = sorted(p.relative_to(out / "dashboards") for p in (out / "dashboards").rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(REPO / "dashboards") for p in (REPO / "dashboards").rglob("*") if p.is_file()
    )
    assert fresh == committed
    assert len([p for p in fresh if p.suffix == ".json"]) == 4
    for relative in fresh:
        assert (out / "dashboards" / relative).read_text() == (REPO / "dashboards" / relative).read_text(), (
            relative
        )
    assert (out / "rules.yaml").read_text() == COMMITTED_RULES.read_text()
    for name in ("grafana-dashboards.yaml", "prometheus-rule.yaml"):
        assert (out / "monitoring" / name).read_text() == (COMMITTED_MONITORING / name).read_text(), name


def test_dashboards_are_the_sdk_model_and_back() -> None:
    for path in sorted((REPO / "dashboards").glob("*.json")):
        data = json.loads(path.read_text())
        model = Dashboard.from_json(data)
        assert json.loads(json.dumps(model, cls=JSONEncoder)) == data, path.name
        assert data["uid"] == path.stem and data["title"].startswith("infersight / ")


def test_the_four_dashboards_and_their_variables() -> None:
    models = dashboard_models()
    assert set(models) == {
        "infersight-overview",
        "infersight-drift",
        "infersight-outliers",
        "infersight-feedback",
    }
    for uid, model in models.items():
        names = [variable["name"] for variable in model["templating"]["list"]]
        assert names[: 1 + len(MODEL_VARIABLES)] == ["datasource", *MODEL_VARIABLES], uid
        ids = [panel["id"] for panel in model["panels"]]
        assert len(ids) == len(set(ids)), uid
    assert "detector" in [v["name"] for v in models["infersight-drift"]["templating"]["list"]]


def test_every_panel_says_what_it_shows_in_which_unit() -> None:
    for uid, model in dashboard_models().items():
        for panel in panels(model):
            where = f"{uid} / {panel['title']}"
            assert len(panel["description"]) > 40, where
            defaults = panel.get("fieldConfig", {}).get("defaults", {})
            unit = defaults.get("unit") or panel.get("options", {}).get("yAxis", {}).get("unit")
            assert unit, where
            assert panel["type"] == "heatmap" or defaults["thresholds"]["steps"], where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
                # A refused request names no model, so the refused share is over every model.
                if MODEL_METRICS.search(target["expr"]) and "rejected" not in target["expr"]:
                    assert 'namespace=~"$namespace"' in target["expr"], f"{where}: {target['expr']}"


def test_the_canary_is_drawn_beside_the_default_endpoint() -> None:
    overview = dashboard_models()["infersight-overview"]
    by_endpoint = [
        target["expr"]
        for panel in panels(overview)
        for target in panel["targets"]
        if "endpoint" in target["expr"].split("sum by (")[-1].split(")")[0]
    ]
    assert by_endpoint, "no overview query groups by endpoint"


def test_every_query_and_rule_parses() -> None:
    expressions = [
        substitute(target["expr"], EXAMPLE_VALUES)
        for model in dashboard_models().values()
        for panel in panels(model)
        for target in panel["targets"]
    ]
    expressions += [rule.expr for rule in alerts.rules()] + [rule.signal for rule in alerts.rules()]
    for expression in expressions:
        promql_parser.parse(expression)
    with pytest.raises(ValueError):
        promql_parser.parse("rate(infersight_records_total[$__rate_interval])")


def test_alert_rules_pass_promtool_and_explain_themselves() -> None:
    checked = promtool("check", "rules", str(COMMITTED_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    rules = yaml.safe_load(COMMITTED_RULES.read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert names >= {
        "InfersightDriftDetected",
        "InfersightOutlierRateHigh",
        "InfersightAdversarialRateHigh",
        "InfersightIngestRejecting",
        "InfersightIngestSpooling",
        "InfersightEventLagHigh",
        "InfersightModelSilent",
        "InfersightDeadLettersGrowing",
        "InfersightCanaryRollBack",
    }
    for rule in rules:
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]


def test_a_test_copy_changes_windows_and_holds_only() -> None:
    short = alerts.Windows(rate="1m", quiet="20s", history="1h", hold="0s")

    def shape(expr: str) -> str:
        return re.sub(r"\b\d+[smhd]\b", "<duration>", expr)

    for production, copy in zip(alerts.rules(), alerts.rules(short), strict=True):
        assert copy.hold == "0s" and copy.alert == production.alert
        assert shape(copy.expr) == shape(production.expr)
        assert copy.expr != production.expr or "[" not in production.expr


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "infersight", "dashboards", "--output", str(blocker / "dashboards")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: cannot write") and "Traceback" not in result.stderr
