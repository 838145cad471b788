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
        str | None,
        typer.Option(
            help="URL of Prometheus as Grafana reaches it, for the provisioned data source "
            "(default: http://prometheus:9090, or http://localhost:9090 with --local)."
        ),
    ] = None,
    dashboards_path: Annotated[
        str | None,
        typer.Option(
            help="Where Grafana finds the JSON files, for the dashboard provider (default: where "
            "compose mounts them, /var/lib/grafana/dashboards/infersight, or the output folder with --local)."
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(help="For a Grafana on this machine: the provider reads the output folder itself."),
    ] = False,
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
    from infersight.monitoring.provisioning import DASHBOARDS_PATH

    url = prometheus_url or ("http://localhost:9090" if local else "http://prometheus:9090")
    provider = dashboards_path or (str(output.resolve()) if local else DASHBOARDS_PATH)
    try:
        written = write_dashboards(output, url, provider)
        if rules is not None:
            written.append(write_rules(rules))
        if kubernetes is not None:
            written.extend(write_kubernetes(kubernetes))
    except OSError as exc:
        raise CliError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    for path in written:
        console.print(f"wrote {path}", highlight=False)
