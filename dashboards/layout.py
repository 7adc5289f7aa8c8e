"""Dashboard assembly: shared settings, the template variables, rows and panel ids.

The variables, as the kubernetes-mixin has them, let one Grafana and one Prometheus serve several
deployments: `datasource`, then `cluster` (optional: empty unless Prometheus stores a `cluster`
label, "All" then matches every series), `namespace` (one deployment) and `instance` (replicas,
"All" by default). Each lists the values found under the ones before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

from . import promql as q
from .panels import DATASOURCE, PanelBuilder

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
        .with_variable(cluster_variable())
        .with_variable(namespace_variable())
        .with_variable(instance_variable())
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


def cluster_variable() -> QueryVariable:
    """Every cluster the service reports from; none when Prometheus adds no `cluster` label
    (one cluster, or `cluster` only as an external label): "All" then matches a missing label."""
    return (
        _label_values_variable(q.CLUSTER, "Cluster", "messages_build_info" + _selector())
        .include_all(True)
        .all_value(".*")
    )


def namespace_variable() -> QueryVariable:
    """One deployment at a time, so that staging and production never add up on a panel.

    Without Kubernetes (docker-compose) no series has the label: the variable is empty ("None")
    and `namespace=~""` matches the missing label.
    """
    build_info = "messages_build_info" + _selector(q.CLUSTER)
    return _label_values_variable(q.NAMESPACE, "Namespace", build_info)


def instance_variable() -> QueryVariable:
    """The deployment's replicas, as Prometheus scrapes them (`up`, so a replica that is down
    is listed too); several or "All"."""
    targets = "up" + _selector(q.CLUSTER, q.NAMESPACE)
    return (
        _label_values_variable(q.INSTANCE, "Instance", targets)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _selector(*variables: str) -> str:
    """`{job="message-send-service", <label>=~"$<label>", …}` for the variables before."""
    return "{" + ", ".join((f'job="{q.JOB}"', *(f'{v}=~"${v}"' for v in variables))) + "}"


def _label_values_variable(name: str, label: str, series: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f"label_values({series}, {name})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


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
