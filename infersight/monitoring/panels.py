"""Panel and variable builders with the defaults every infersight dashboard shares.

Each helper takes the title, a description (shown as the panel's ⓘ, it says what the panel
means), the unit and the queries, so that no panel leaves the unit or the meaning unset.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from infersight.monitoring.promql import MODEL, MODEL_VARIABLES

#: Every query goes to the Prometheus the ``datasource`` variable names.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

Step = tuple[float | None, str]

#: Green below the first bound, red from it.
OK_COLOR = "green"
WARN_COLOR = "orange"
BAD_COLOR = "red"


def query(
    expr: str, legend: str = "__auto", *, instant: bool = False, heatmap_format: bool = False
) -> Dataquery:
    """One Prometheus query; ``instant`` for panels that show the latest value only."""
    built = Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
    built = built.instant() if instant else built.range()
    if heatmap_format:
        built = built.format(PromQueryFormat.HEATMAP)
    return built


def thresholds(*steps: Step) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (everything below the next bound)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=value, color=color) for value, color in steps])
    )


def _targets(queries: Sequence[Dataquery]) -> list[Builder[variants.Dataquery]]:
    return [target.ref_id(chr(ord("A") + index)) for index, target in enumerate(queries)]


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Dataquery],
    *,
    steps: Sequence[Step] = ((None, OK_COLOR),),
    draw_thresholds: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
    width: int = 12,
) -> timeseries.Panel:
    """A time series; ``draw_thresholds`` draws the thresholds as dashed lines across the graph."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(_targets(queries))
        .thresholds(thresholds(*steps))
        .span(width)
        .height(8)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if draw_thresholds:
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Dataquery],
    *,
    steps: Sequence[Step] = ((None, OK_COLOR),),
    width: int = 6,
) -> stat.Panel:
    """One big number (the latest value) with a sparkline, coloured by the thresholds."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(_targets(queries))
        .thresholds(thresholds(*steps))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(width)
        .height(4)
    )


def heatmap_panel(
    title: str, description: str, unit: str, histogram_query: Dataquery, *, width: int = 12
) -> heatmap.Panel:
    """A histogram's buckets over time: each column is one rate window, colour is how many fell there."""
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([histogram_query]))
        .calculate(False)
        .color(heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges").steps(64))
        .y_axis(heatmap.YAxisConfig().unit(unit))
        .cell_values(heatmap.CellValues().unit("short"))
        .span(width)
        .height(8)
    )


def state_panel(
    title: str,
    description: str,
    queries: Sequence[Dataquery],
    states: Sequence[tuple[str, str, str]],
    *,
    width: int = 24,
) -> statetimeline.Panel:
    """A state timeline; ``states`` maps each value to its text and colour."""
    mapping = ValueMap(
        options={
            value: ValueMappingResult(text=text, color=color, index=index)
            for index, (value, text, color) in enumerate(states)
        }
    )
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit("none")
        .targets(_targets(queries))
        .mappings([mapping])
        .thresholds(thresholds((None, OK_COLOR)))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .span(width)
        .height(6)
    )


def ranking_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Dataquery],
    *,
    steps: Sequence[Step] = ((None, OK_COLOR),),
    width: int = 12,
) -> bargauge.Panel:
    """Horizontal bars, one per series, for "which models/features are worst" questions."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(_targets(queries))
        .thresholds(thresholds(*steps))
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(width)
        .height(8)
    )


def _query_variable(name: str, label: str, expression: str) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(expression)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def variables(
    detector_metric: str | None = None,
) -> list[dashboard_builders.DatasourceVariable | dashboard_builders.QueryVariable]:
    """Data source, then namespace ▸ inferenceservice ▸ component ▸ endpoint (each narrowed by the last).

    The model variables come from ``infersight_records_total``, which every model with traffic
    has; ``detector_metric`` adds a detector variable taken from that metric.
    """
    chosen: list[str] = []
    built: list[dashboard_builders.DatasourceVariable | dashboard_builders.QueryVariable] = [
        dashboard_builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    ]
    for name in MODEL_VARIABLES:
        selector = ", ".join(f'{previous}=~"${previous}"' for previous in chosen)
        built.append(
            _query_variable(
                name, name.capitalize(), f"label_values(infersight_records_total{{{selector}}}, {name})"
            )
        )
        chosen.append(name)
    if detector_metric is not None:
        built.append(
            _query_variable("detector", "Detector", f"label_values({detector_metric}{{{MODEL}}}, detector)")
        )
    return built
