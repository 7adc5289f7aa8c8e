"""The names, paths and labels of the generated resources; the ServiceMonitor, the
PrometheusRule and the dashboards' ConfigMaps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = ROOT / "deploy" / "kubernetes" / "monitoring"
RULES_FILE = ROOT / "alerts" / "message-send-service.rules.yml"
ALERTMANAGER_FILE = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD_DIR = ROOT / "dashboards"

COMMAND = "python -m dashboards.prometheus_operator"
#: the scrape job every alert and dashboard query selects (`job="message-send-service"`)
JOB = "message-send-service"
#: the labels of the service's Kubernetes Service, and the name of its metrics port
SERVICE_SELECTOR = {"app": "message-send-service"}
SERVICE_PORT = "http"
#: on every generated object, as deploy/kubernetes/base labels its own
COMMON_LABELS = {"app.kubernetes.io/part-of": "message-send"}
#: the Grafana sidecar's default label; the folder annotation works where the sidecar's
#: `folderAnnotation` is set to `grafana_folder`
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
DASHBOARD_FOLDER = {"grafana_folder": "Message send"}

Document = dict[str, Any]


class Untranslatable(ValueError):
    """A source setting that has no faithful prometheus-operator equivalent here."""


def metadata(
    name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Document:
    """`name`, the common labels and `labels`, and `annotations` if any."""
    meta: Document = {"name": name, "labels": {**COMMON_LABELS, **(labels or {})}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# --- ServiceMonitor ------------------------------------------------------------------------

#: scrape-config keys of the job that the ServiceMonitor reproduces (static_configs is replaced
#: by the Service's endpoints)
_SCRAPE_KEYS = {"job_name", "metrics_path", "scrape_interval", "scrape_timeout", "scheme"}


def service_monitor(prometheus: Mapping[str, Any]) -> Document:
    """The `message-send-service` scrape job as a ServiceMonitor on the Service's `http` port."""
    jobs = [job for job in prometheus.get("scrape_configs", []) if job.get("job_name") == JOB]
    if len(jobs) != 1:
        raise Untranslatable(f"prometheus.yml: expected one scrape job named {JOB!r}")
    job = jobs[0]
    extra = set(job) - _SCRAPE_KEYS - {"static_configs"}
    if extra:
        raise Untranslatable(f"prometheus.yml job {JOB}: no translation for {sorted(extra)}")
    defaults = prometheus.get("global", {})
    endpoint: Document = {
        "port": SERVICE_PORT,
        "path": job.get("metrics_path", "/metrics"),
        "interval": job.get("scrape_interval", defaults.get("scrape_interval", "1m")),
    }
    timeout = job.get("scrape_timeout", defaults.get("scrape_timeout"))
    if timeout is not None:
        endpoint["scrapeTimeout"] = timeout
    if "scheme" in job:
        endpoint["scheme"] = job["scheme"]
    # the operator sets `job` to the Service's name (or its `jobLabel` label); this relabeling,
    # applied after the operator's own, pins it to the job name the queries use
    endpoint["relabelings"] = [{"action": "replace", "targetLabel": "job", "replacement": JOB}]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(JOB),
        "spec": {
            "selector": {"matchLabels": dict(SERVICE_SELECTOR)},
            "endpoints": [endpoint],
        },
    }


# --- PrometheusRule ------------------------------------------------------------------------


def prometheus_rule(rules: Mapping[str, Any]) -> Document:
    """The rule file's groups, unchanged, as a PrometheusRule."""
    extra = set(rules) - {"groups"}
    if extra:
        raise Untranslatable(f"rules file: no translation for {sorted(extra)}")
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(JOB),
        "spec": {"groups": rules["groups"]},
    }


# --- dashboards ----------------------------------------------------------------------------


def dashboard_config_map(text: str) -> Document:
    """One dashboard's JSON text as a ConfigMap the Grafana sidecar loads (key `<uid>.json`)."""
    uid = json.loads(text)["uid"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            f"grafana-dashboard-{uid}",
            labels=DASHBOARD_LABEL,
            annotations=DASHBOARD_FOLDER,
        ),
        "data": {f"{uid}.json": text},
    }
