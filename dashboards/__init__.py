"""Grafana dashboards for the message send service, built with grafana-foundation-sdk.

`python -m dashboards` writes them as JSON next to this file.
"""

from __future__ import annotations

from ._generate import all_dashboards, all_queries, iter_panels, render, rendered

__all__ = ["all_dashboards", "all_queries", "iter_panels", "render", "rendered"]
