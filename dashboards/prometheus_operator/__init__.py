"""`python -m dashboards.prometheus_operator [--check]`: the monitoring stack as prometheus-operator
resources, written to deploy/kubernetes/monitoring/ (a kustomization).

Every file is generated from the sources the compose stack runs, so the two cannot drift:

- servicemonitor.yaml       <- deploy/prometheus/prometheus.yml (the `message-send-service` job)
- prometheusrule.yaml       <- alerts/message-send-service.rules.yml (its groups, unchanged)
- alertmanagerconfig.yaml   <- deploy/alertmanager/alertmanager.yml (translated to camelCase)
- grafana-dashboard-*.yaml  <- dashboards/*.json (the committed JSON text, byte for byte)
- kustomization.yaml        <- the list of the above

A source this module cannot translate faithfully (an Alertmanager receiver type, global settings,
time intervals, ...) stops the generator with `Untranslatable` instead of being dropped. `--check`
writes nothing and exits 1 when a committed file differs from what would be written.
"""

from __future__ import annotations

from .alertmanager import alertmanager_config, parse_matcher
from .files import dump, regenerate, rendered
from .resources import (
    COMMAND,
    OUTPUT_DIR,
    Untranslatable,
    dashboard_config_map,
    prometheus_rule,
    service_monitor,
)

__all__ = [
    "COMMAND",
    "OUTPUT_DIR",
    "Untranslatable",
    "alertmanager_config",
    "dashboard_config_map",
    "dump",
    "parse_matcher",
    "prometheus_rule",
    "regenerate",
    "rendered",
    "service_monitor",
]
