"""``infersight dashboards``: Grafana dashboards and provisioning; alert rules and manifests on request."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from infersight.cli.context import CliError

console = Console(stderr=True)


def dashboards(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the dashboards' JSON and provisioning/.")
    ] = Path("dashboards"),
    prometheus_url: Annotated[
        str, typer.Option(help="URL of Prometheus as Grafana reaches it, for the provisioned data source.")
    ] = "http://prometheus:9090",
    dashboards_path: Annotated[
        str, typer.Option(help="Where Grafana finds the JSON files, for the dashboard provider.")
    ] = "/var/lib/grafana/dashboards/infersight",
    rules: Annotated[
        Path | None, typer.Option(help="Also write the Prometheus alert rule file here.")
    ] = None,
    kubernetes: Annotated[
        Path | None,
        typer.Option(help="Also write the dashboards as Grafana ConfigMaps and the PrometheusRule here."),
    ] = None,
) -> None:
    """Write the Grafana dashboards (Overview, Drift, Outliers & adversarial, Feedback) and provisioning."""
    from infersight.monitoring.output import write_dashboards, write_kubernetes, write_rules

    try:
        written = write_dashboards(output, prometheus_url, dashboards_path)
        if rules is not None:
            written.append(write_rules(rules))
        if kubernetes is not None:
            written.extend(write_kubernetes(kubernetes))
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    for path in written:
        console.print(f"wrote {path}", highlight=False)
