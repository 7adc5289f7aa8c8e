"""Dashboard assembly: shared settings, the `datasource` variable, rows and panel ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    Row,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
)

from .panels import PanelBuilder

TAG = "message-send-service"


@dataclass(frozen=True)
class Section:
    """A row and the panels under it (expanded rows keep their panels at the top level)."""

    title: str
    panels: Sequence[PanelBuilder]


def build_dashboard(
    *, uid: str, title: str, description: str, sections: Sequence[Section]
) -> Dashboard:
    """A dashboard with the project's settings; panel ids are numbered in reading order."""
    board = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .annotation(_alerts_and_annotations())
        .with_variable(_datasource_variable())
        .link(_sibling_dashboards())
    )
    panel_id = 0
    for section in sections:
        panel_id += 1
        board.with_row(Row(section.title).id(panel_id))
        for panel in section.panels:
            panel_id += 1
            board.with_panel(panel.id(panel_id))
    return board


def _datasource_variable() -> DatasourceVariable:
    return DatasourceVariable("datasource").label("Data source").type("prometheus")


def _alerts_and_annotations() -> AnnotationQuery:
    """Grafana's built-in annotations: alert state changes and manual notes on every graph."""
    return (
        AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .built_in(1)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )


def _sibling_dashboards() -> DashboardLink:
    return (
        DashboardLink("Message send dashboards")
        .type(DashboardLinkType.DASHBOARDS)
        .tags([TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )
