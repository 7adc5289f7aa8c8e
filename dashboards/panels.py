"""Panel builders with the project's conventions.

Every panel queries the `${datasource}` variable, has a unit and a description, and draws the
alert thresholds that concern it as lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

from . import promql as q

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

GOOD = "green"
WARNING = "orange"
CRITICAL = "red"

PanelBuilder: TypeAlias = timeseries.Panel | stat.Panel | statetimeline.Panel


@dataclass(frozen=True)
class Query:
    """One PromQL target and its legend."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Line:
    """A threshold: from `value` up, the panel shows `color`."""

    value: float
    color: str


@dataclass(frozen=True)
class State:
    """A value of a 0/1 gauge and how to show it."""

    value: int
    text: str
    color: str


def warning(value: float) -> Line:
    return Line(value, WARNING)


def critical(value: float) -> Line:
    return Line(value, CRITICAL)


def latency_queries(histogram: str, *matchers: str, by: str | None = None) -> list[Query]:
    """p50, p95 and p99 of a histogram, one target each (per `by` label when given)."""
    return [_latency_query(quantile, histogram, matchers, by) for quantile in q.QUANTILES]


def _latency_query(
    quantile: float, histogram: str, matchers: Sequence[str], by: str | None
) -> Query:
    labels = (by,) if by else ()
    legend = f"p{quantile * 100:g}" + (f" {{{{{by}}}}}" if by else "")
    return Query(q.quantile(quantile, histogram, *matchers, by=labels), legend)


def timeseries_panel(
    title: str,
    *,
    unit: str,
    description: str,
    queries: Sequence[Query],
    lines: Sequence[Line] = (),
    bars: bool = False,
    width: int = 12,
) -> timeseries.Panel:
    """A graph; `lines` are drawn as horizontal threshold lines."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .min(0)
        .datasource(DATASOURCE)
        .thresholds(_thresholds(GOOD, lines))
        .legend(_legend())
        .tooltip(_tooltip())
        .span(width)
        .height(8)
    )
    if lines:
        panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    _add_targets(panel, queries, instant=False)
    return panel


def stat_panel(
    title: str,
    *,
    unit: str,
    description: str,
    queries: Sequence[Query],
    base_color: str = GOOD,
    lines: Sequence[Line] = (),
    states: Sequence[State] = (),
    decimals: int | None = None,
    text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
    width: int = 6,
) -> stat.Panel:
    """A single figure from instant queries; `lines` colour it, `states` name its values."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .thresholds(_thresholds(base_color, lines))
        .mappings(_mappings(states))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .text_mode(text_mode)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(width)
        .height(5)
    )
    if decimals is not None:
        panel.decimals(decimals)
    _add_targets(panel, queries, instant=True)
    return panel


def state_timeline_panel(
    title: str,
    *,
    description: str,
    queries: Sequence[Query],
    states: Sequence[State],
    width: int = 12,
) -> statetimeline.Panel:
    """One lane per series (e.g. per instance) of a 0/1 gauge, coloured by `states`."""
    panel = (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(DATASOURCE)
        .thresholds(_thresholds(GOOD, ()))
        .mappings(_mappings(states))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .legend(common_builders.VizLegendOptions().show_legend(False))
        .span(width)
        .height(8)
    )
    _add_targets(panel, queries, instant=False)
    return panel


def _add_targets(panel: PanelBuilder, queries: Sequence[Query], *, instant: bool) -> None:
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .ref_id(chr(ord("A") + index))
            .expr(query.expr)
            .legend_format(query.legend)
            .datasource(DATASOURCE)
        )
        panel.with_target(target.instant() if instant else target.range())


def _thresholds(base_color: str, lines: Sequence[Line]) -> ThresholdsConfig:
    steps = [Threshold(value=None, color=base_color)]
    steps += [Threshold(value=line.value, color=line.color) for line in lines]
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def _mappings(states: Sequence[State]) -> list[ValueMapping]:
    if not states:
        return []
    options = {
        str(state.value): ValueMappingResult(text=state.text, color=state.color, index=index)
        for index, state in enumerate(states)
    }
    return [ValueMap(options=options)]


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .calcs(["lastNotNull", "max"])
    )


def _tooltip() -> common_builders.VizTooltipOptions:
    return (
        common_builders.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )
