"""The frame every infersight dashboard shares: uid, tags, time range, variables, rows, links."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DashboardLinkType, Panel

from infersight.monitoring.panels import variables

TAG = "infersight"

Panels = list[Builder[Panel]]
Rows = Sequence[tuple[str, Panels]]


def board(
    uid: str, title: str, description: str, rows: Rows, detector_metric: str | None = None
) -> Dashboard:
    """A dashboard of titled rows; every infersight dashboard links to the others by tag."""
    built = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(list(variables(detector_metric)))
        .link(
            DashboardLink("infersight")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for row_title, panels in rows:
        built = built.with_row(Row(row_title))
        for panel in panels:
            built = built.with_panel(panel)
    return built
