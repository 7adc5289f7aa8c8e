"""Panel builders with the project's conventions.

Every panel queries the `${datasource}` variable, has a unit and a description, and draws the
alert thresholds that concern it as lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

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
#: the same kinds, for a helper that hands back the builder it was given
AnyPanel = TypeVar("AnyPanel", timeseries.Panel, stat.Panel, statetimeline.Panel)


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


def per_instance(metric: str, *matchers: str) -> Query:
    """A gauge as each replica reports it, one series per instance."""
    return Query(q.max_by(("instance",), q.series(metric, *matchers)), _label("instance"))


def latency_panel(
    subject: str,
    histogram: str,
    *matchers: str,
    description: str,
    by: str | None = None,
    lines: Sequence[Line] = (),
    width: int = 12,
) -> timeseries.Panel:
    """p50, p95 and p99 of a histogram in seconds, per `by` label when given.

    The title, "<subject> (p50 / p95 / p99)", names the quantiles drawn.
    """
    quantiles = " / ".join(_quantile_name(quantile) for quantile in q.QUANTILES)
    return timeseries_panel(
        f"{subject} ({quantiles})",
        unit="s",
        description=description,
        queries=[_latency_query(quantile, histogram, matchers, by) for quantile in q.QUANTILES],
        lines=lines,
        width=width,
    )


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
        _panel(timeseries.Panel(), title, description, unit, _thresholds(GOOD, lines))
        .min(0)
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
        _panel(stat.Panel(), title, description, unit, _thresholds(base_color, lines))
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


def slo_panel(
    title: str, *, objective: float, description: str, query: Query, decimals: int, width: int = 6
) -> stat.Panel:
    """A share against its objective: red under it, green from it up."""
    return stat_panel(
        title,
        unit="percentunit",
        description=description,
        queries=[query],
        base_color=CRITICAL,
        lines=[Line(objective, GOOD)],
        decimals=decimals,
        width=width,
    )


def replica_count_panel(
    title: str, *, metric: str, label: str, unit: str, description: str, width: int = 6
) -> stat.Panel:
    """How many replicas report each value of `label` on an info-style gauge, one figure each."""
    return stat_panel(
        title,
        unit=unit,
        description=description,
        queries=[Query(q.sum_by((label,), q.series(metric)), _label(label))],
        base_color="blue",
        text_mode=common.BigValueTextMode.VALUE_AND_NAME,
        width=width,
    )


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
        _panel(statetimeline.Panel(), title, description, "none", _thresholds(GOOD, ()))
        .mappings(_mappings(states))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .legend(common_builders.VizLegendOptions().show_legend(False))
        .span(width)
        .height(8)
    )
    _add_targets(panel, queries, instant=False)
    return panel


def _panel(
    panel: AnyPanel, title: str, description: str, unit: str, thresholds: ThresholdsConfig
) -> AnyPanel:
    """What every panel has: its texts, its unit, the data source and threshold steps."""
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .thresholds(thresholds)
    )


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


def _latency_query(
    quantile: float, histogram: str, matchers: Sequence[str], by: str | None
) -> Query:
    labels = (by,) if by else ()
    legend = _quantile_name(quantile) + (f" {_label(by)}" if by else "")
    return Query(q.quantile(quantile, histogram, *matchers, by=labels), legend)


def _quantile_name(quantile: float) -> str:
    return f"p{quantile * 100:g}"


def _label(name: str) -> str:
    """A legend part that Grafana replaces with the series' value of label `name`."""
    return "{{" + name + "}}"
