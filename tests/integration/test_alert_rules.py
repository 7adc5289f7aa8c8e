"""The alert rules: promtool validates and unit-tests them; every alert is labelled, documented
in RUNBOOK.md and covered by a firing and a non-firing promtool test case; every aggregation keeps
the deployment's labels (cluster, namespace), and every alert is tested with two deployments."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..helpers import required_tool

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RUNBOOK = ROOT / "RUNBOOK.md"
SEVERITIES = {"critical", "warning", "info", "none"}
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
#: alerts whose whole point is to fire all the time: a non-firing case cannot exist
ALWAYS_FIRING = {"Watchdog"}
#: what every aggregation keeps: one deployment never adds up with another in one alert
DEPLOYMENT_LABELS = ("cluster", "namespace", "job")
AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|group|stddev|stdvar|topk|bottomk|quantile|count_values)\s*"
    r"(?:(by|without)\s*\(([^)]*)\))?\s*\("
)
JOIN = re.compile(r"\b(and|unless)\b(?:\s+on\s*\(([^)]*)\))?")


def promtool() -> str:
    return required_tool("promtool", "prometheus")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=100, check=False
    )


def rule_files() -> list[Path]:
    files = sorted(ALERTS.glob("*.yml"))
    assert files, "no rule files in alerts/"
    return files


def promtool_test_files() -> list[Path]:
    files = sorted((ALERTS / "tests").glob("*.test.yml"))
    assert files, "no promtool tests in alerts/tests/"
    return files


def rules() -> Iterator[dict[str, Any]]:
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "record" in rule]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> list[str]:
    """Anchors of RUNBOOK.md's headings, skipping fenced code (shell comments start with #)."""
    anchors, fenced = [], False
    for line in RUNBOOK.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)$", line)):
            anchors.append(github_anchor(match.group(1)))
    return anchors


def promtool_tests() -> list[dict[str, Any]]:
    """Every test (input series and cases) of every promtool test file."""
    return [
        test for path in promtool_test_files() for test in yaml.safe_load(path.read_text())["tests"]
    ]


def rule_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for test in promtool_tests():
        cases += test.get("alert_rule_test") or []
    return cases


Deployment = tuple[str | None, str | None]


def input_deployments(test: dict[str, Any]) -> set[Deployment]:
    """(cluster, namespace) of a promtool test's input series that have a namespace."""
    found = set()
    for item in test.get("input_series") or []:
        labels = dict(re.findall(r'\b(cluster|namespace)="([^"]*)"', item["series"]))
        if "namespace" in labels:
            found.add((labels.get("cluster"), labels["namespace"]))
    return found


def test_promtool_checks_the_rule_files() -> None:
    result = run(promtool(), "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = run(promtool(), "test", "rules", *map(str, promtool_test_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_are_alerts_and_their_names_are_unique() -> None:
    names = [rule["alert"] for rule in alerting_rules()]
    assert len(names) >= 20, names
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_alert_is_labelled_and_annotated(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    labels = rule.get("labels", {})
    assert labels.get("severity") in SEVERITIES, f"{name}: severity {labels.get('severity')!r}"
    assert labels.get("service") == "message-send-service", name
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{name}: annotation {key} missing"
    assert annotations["runbook_url"] == f"RUNBOOK.md#{name.lower()}"


def test_every_alert_has_its_own_runbook_section() -> None:
    anchors = runbook_anchors()
    for rule in alerting_rules():
        fragment = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchors.count(fragment) == 1, (
            f"RUNBOOK.md needs exactly one heading '### {rule['alert']}'"
        )


def test_runbook_has_the_operational_sections() -> None:
    anchors = runbook_anchors()
    for fragment in ("rollback-flag-delivery-mode", "dead-letters"):
        assert fragment in anchors, fragment


def test_runbook_sql_never_reads_message_content() -> None:
    blocks = re.findall(r"```sql\n(.*?)```", RUNBOOK.read_text(), flags=re.S)
    assert blocks, "RUNBOOK.md has no ```sql blocks"
    for block in blocks:
        assert not re.search(r"\bcontent\b|\*\s+from\b", block, flags=re.I), block


def test_recording_rules_follow_the_naming_convention_and_are_used() -> None:
    records = [rule["record"] for rule in recording_rules()]
    assert records
    expressions = " ".join(rule["expr"] for rule in alerting_rules())
    for name in records:
        assert RECORD_NAME.match(name), name
        assert re.search(rf"\b{re.escape(name)}\b", expressions), (
            f"{name} is recorded but no alert uses it"
        )


def test_every_alert_has_a_firing_and_a_non_firing_test_case() -> None:
    cases = rule_tests()
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    for rule in alerting_rules():
        name = rule["alert"]
        assert name in firing, f"{name} has no promtool test case where it fires"
        if name not in ALWAYS_FIRING:
            assert name in silent, f"{name} has no promtool test case where it must not fire"


def test_firing_cases_expect_every_label_and_annotation() -> None:
    by_name = {rule["alert"]: rule for rule in alerting_rules()}
    for case in rule_tests():
        rule = by_name.get(case["alertname"])
        assert rule is not None, f"a test names unknown alert {case['alertname']}"
        for alert in case.get("exp_alerts") or []:
            assert rule["labels"].items() <= alert["exp_labels"].items(), case
            assert set(alert["exp_annotations"]) == set(rule["annotations"]), case


def test_the_always_firing_alert_is_a_constant() -> None:
    for rule in alerting_rules():
        if rule["alert"] in ALWAYS_FIRING:
            assert rule["expr"].strip() == "vector(1)"
            assert rule["labels"]["severity"] == "none"


@pytest.mark.parametrize(
    "rule", list(rules()), ids=lambda rule: rule.get("alert") or rule["record"]
)
def test_aggregations_keep_the_deployment_labels(rule: dict[str, Any]) -> None:
    """`by (cluster, namespace, job, …)` everywhere: replicas add up, deployments never do."""
    expr = rule["expr"]
    for operator, grouping, labels in AGGREGATION.findall(expr):
        assert grouping == "by", f"{operator} without `by (cluster, namespace, job)` in {expr}"
        kept = tuple(label.strip() for label in labels.split(","))
        assert kept[: len(DEPLOYMENT_LABELS)] == DEPLOYMENT_LABELS, f"{operator} by {kept}"
    for quantile in re.findall(r"histogram_quantile\([^,]*,\s*sum by \(([^)]*)\)", expr):
        assert quantile == "cluster, namespace, job, le", expr
    for selector in re.findall(r"\{[^}]*\}", expr):
        assert 'job="message-send-service"' in selector, selector


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_alerts_join_on_the_deployment_labels(rule: dict[str, Any]) -> None:
    """Recording rules' series (and the halves of a condition) are matched per deployment, or
    per replica of one (a condition about each replica's own state, e.g. its JWKS keys)."""
    deployment = ", ".join(DEPLOYMENT_LABELS)
    for operator, labels in JOIN.findall(rule["expr"]):
        assert labels in (deployment, f"{deployment}, instance"), f"{operator} in {rule['expr']}"


def test_absent_also_looks_at_each_deployment() -> None:
    """`absent()` alone knows no namespace: a deployment whose targets vanished while another's
    remain must alert too, under its own labels."""
    absents = [rule for rule in rules() if "absent(" in rule["expr"]]
    assert absents
    for rule in absents:
        expr = rule["expr"]
        assert "group by (cluster, namespace, job) (max_over_time(up{" in expr, expr
        assert "unless on (cluster, namespace, job)" in expr, expr
        assert re.search(r"\bor on \(job\)\s*absent\(", expr), expr


def test_every_alert_is_tested_with_two_deployments() -> None:
    """A case per alert where series of two deployments go in and the alert fires for one of
    them only, its labels included (promtool compares the whole list of alerts)."""
    proven: dict[str, set[Deployment]] = {}
    for test in promtool_tests():
        deployments = input_deployments(test)
        for case in test.get("alert_rule_test") or []:
            labels = [alert["exp_labels"] for alert in case.get("exp_alerts") or []]
            firing = {(label.get("cluster"), label.get("namespace")) for label in labels}
            if labels and firing < deployments:
                proven.setdefault(case["alertname"], set()).update(deployments)
    missing = {rule["alert"] for rule in alerting_rules()} - ALWAYS_FIRING - set(proven)
    assert not missing, f"no two-deployment promtool case where only one fires: {sorted(missing)}"
    # two namespaces side by side, and one namespace name in two clusters
    tested = set().union(*proven.values())
    assert len({namespace for _, namespace in tested}) >= 2
    assert any(
        len({cluster for cluster, other in tested if other == namespace}) >= 2
        for _, namespace in tested
    ), "no promtool case with one namespace in two clusters"
