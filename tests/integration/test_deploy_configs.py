"""The compose stack and its configs validate with the tools that run them."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from ..helpers import required_tool

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    return required_tool(name, "prometheus-alertmanager" if name == "amtool" else "prometheus")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )


def test_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    result = run(str(checker), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid() -> None:
    result = run(
        tool("promtool"), "check", "config", "--syntax-only", "deploy/prometheus/prometheus.yml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid() -> None:
    result = run(tool("amtool"), "check-config", "deploy/alertmanager/alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_the_stack_has_every_part_with_health_checks_and_ordering() -> None:
    services = compose()["services"]
    assert {
        "service",
        "postgres",
        "soketi",
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
    } <= set(services)
    for name in ("service", "postgres", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["service"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["service"]["condition"] == "service_healthy"


def test_prometheus_in_compose_loads_the_projects_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert "./alerts:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    patterns = [Path(p).name for p in config["rule_files"]]
    rule_files = [p.name for p in (ROOT / "alerts").glob("*.yml")]
    assert rule_files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in rule_files)
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert "message-send-service" in jobs  # the job name every alert and dashboard uses


def test_grafana_in_compose_provisions_the_projects_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    assert "./dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert list((ROOT / "dashboards").glob("*.json")), "no dashboards to provision"


def test_alertmanager_inhibition_names_a_real_alert() -> None:
    config = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    alerts = {
        rule["alert"]
        for path in (ROOT / "alerts").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"]:
            name = matcher.split("=", 1)[1].strip().strip('"')
            assert name in alerts, f"inhibit rule names unknown alert {name}"
