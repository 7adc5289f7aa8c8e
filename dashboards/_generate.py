"""Rendering every dashboard to JSON, and reading queries back out of the JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import database, delivery, delivery_mode, overview

DashboardJSON = dict[str, Any]

#: file name -> builder; the file name is the dashboard's uid
BUILDERS: dict[str, Callable[[], Dashboard]] = {
    f"{module.UID}.json": module.dashboard
    for module in (overview, delivery, database, delivery_mode)
}


def render(board: Dashboard) -> str:
    """Deterministic JSON: sorted keys, 2-space indent, trailing newline."""
    text = json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False)
    return text + "\n"


def rendered() -> dict[str, str]:
    """File name -> file content, for every dashboard."""
    return {name: render(build()) for name, build in BUILDERS.items()}


def all_dashboards() -> dict[str, DashboardJSON]:
    """File name -> dashboard JSON model."""
    return {name: json.loads(text) for name, text in rendered().items()}


def iter_panels(panels: list[DashboardJSON]) -> Iterator[DashboardJSON]:
    """Every panel, rows and the panels inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def all_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every target of every dashboard."""
    return [
        (panel["title"], target["expr"])
        for model in all_dashboards().values()
        for panel in iter_panels(model["panels"])
        for target in panel.get("targets", [])
    ]
