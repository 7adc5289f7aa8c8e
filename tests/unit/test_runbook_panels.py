"""Every alert's RUNBOOK section starts on-call on a dashboard panel that exists: the
dashboard and panel named by its "**First panel**" line are in dashboards/*.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FIRST_PANEL = re.compile(
    r'^\*\*First panel\*\* — (?:\*(?P<dashboard>[^*]+)\* → "(?P<panel>[^"]+)"|none: .+)'
)


def _sections() -> dict[str, str]:
    text = (ROOT / "RUNBOOK.md").read_text()
    parts = re.split(r"^### (\S+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _panels() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / "dashboards").glob("message-send-*.json"):
        board = json.loads(path.read_text())
        found[board["title"]] = {panel["title"] for panel in board["panels"]}
    return found


def _alerts() -> list[str]:
    rules = yaml.safe_load((ROOT / "alerts" / "message-send-service.rules.yml").read_text())
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_every_alert_section_names_a_first_panel_that_exists() -> None:
    sections, panels = _sections(), _panels()
    problems = []
    for alert in _alerts():
        section = sections.get(alert, "")
        line = next(
            (x for x in section.strip().splitlines() if x.startswith("**First panel**")), ""
        )
        match = FIRST_PANEL.match(line)
        if match is None:
            problems.append(f"{alert}: no '**First panel**' line")
        elif match["dashboard"] and match["panel"] not in panels.get(match["dashboard"], set()):
            problems.append(f"{alert}: no panel {match['panel']!r} in {match['dashboard']!r}")
    assert not problems, problems
