"""The Grafana dashboards: the committed JSON is the generator's output, and every panel keeps
the project's rules (datasource and deployment variables, units, rate windows, alert thresholds,
metric names)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder

import dashboards
from dashboards import database

Model = dict[str, Any]

DASHBOARD_DIR = Path(dashboards.__file__).resolve().parent
DASHBOARDS = {
    "message-send-overview": "Message send — Service overview",
    "message-send-delivery": "Message send — Pusher delivery",
    "message-send-database": "Message send — Database",
    "message-send-delivery-mode": "Message send — Delivery mode",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# the metrics contract (CONTRACT.md / README "Telemetry")
HISTOGRAMS = {
    "http_server_request_duration_seconds",
    "messages_db_insert_duration_seconds",
    "messages_db_insert_batch_rows",
    "messages_pusher_request_duration_seconds",
    "messages_delivery_latency_seconds",
}
OTHER_METRICS = {
    "messages_saved_total",
    "messages_pusher_requests_total",
    "messages_pusher_retries_total",
    "messages_background_jobs",
    "messages_undelivered",
    "messages_oldest_undelivered_age_seconds",
    "messages_dead_lettered_total",
    "messages_delivery_claims_lapsed_total",
    "messages_pusher_circuit_open",
    "messages_pusher_up",
    "messages_delivery_mode",
    "messages_build_info",
    "messages_auth_jwks_refresh_total",
    "messages_auth_jwks_keys_age_seconds",
    "messages_auth_jwks_keys",
}
SERIES = OTHER_METRICS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_count", "_sum")}
METRIC_NAME = re.compile(r"messages_[a-z_]+|http_server_[a-z_]+")
#: a series the service exports, or Prometheus' `up` of its targets, and its selector if any
SELECTOR = re.compile(r"\b(messages_[a-z_]+|http_server_[a-z_]+|up)\b(\{[^}]*\})?")
RANGE_FUNCTION = re.compile(r"\b(rate|increase)\(([^\[\]()]*)\[([^\]]*)\]\)")
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__range": "5m"}
#: what Grafana puts in for the template variables: "All" (`.*`), or one namespace
VARIABLES = {"$cluster": ".*", "$namespace": "production", "$instance": ".*"}
JOB = 'job="message-send-service"'
DEPLOYMENT = (JOB, 'cluster=~"$cluster"', 'namespace=~"$namespace"')
REPLICAS = 'instance=~"$instance"'
#: name -> (label_values query, multi-value, "All" value); in this order, after `datasource`
DEPLOYMENT_VARIABLES = {
    "cluster": (
        'label_values(messages_build_info{job="message-send-service"}, cluster)',
        False,
        ".*",
    ),
    "namespace": (
        'label_values(messages_build_info{job="message-send-service", cluster=~"$cluster"}, '
        "namespace)",
        False,
        None,
    ),
    "instance": (
        'label_values(up{job="message-send-service", cluster=~"$cluster", '
        'namespace=~"$namespace"}, instance)',
        True,
        ".*",
    ),
}


@pytest.fixture(scope="module")
def models() -> dict[str, Model]:
    return {model["uid"]: model for model in dashboards.all_dashboards().values()}


def panels(model: Model) -> list[Model]:
    """Every panel but rows, whether placed after a row or inside a collapsed one."""
    return [p for p in dashboards.iter_panels(model["panels"]) if p["type"] != "row"]


def all_panels(models: dict[str, Model]) -> Iterator[tuple[str, Model]]:
    for uid, model in models.items():
        for panel in panels(model):
            yield uid, panel


def panel(models: dict[str, Model], uid: str, title: str) -> Model:
    found = [p for p in panels(models[uid]) if p["title"] == title]
    assert len(found) == 1, f"{uid}: {len(found)} panels titled {title!r}"
    return found[0]


def threshold_values(panel: Model) -> set[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {step["value"] for step in steps if step["value"] is not None}


def threshold_colors(panel: Model) -> dict[float, str]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {step["value"]: step["color"] for step in steps if step["value"] is not None}


def exprs(panel: Model) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


# (a) generated output ---------------------------------------------------------------------


def test_committed_files_are_exactly_the_generator_output() -> None:
    rendered = dashboards.rendered()
    for name, text in rendered.items():
        path = DASHBOARD_DIR / name
        assert path.read_bytes() == text.encode("utf-8"), f"{name} is stale: python -m dashboards"
    committed = {path.name for path in DASHBOARD_DIR.glob("*.json")}
    assert committed == set(rendered), "a dashboard file without a generator (or vice versa)"


def test_generation_is_deterministic_and_canonical() -> None:
    first, second = dashboards.rendered(), dashboards.rendered()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")
        assert (
            json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
            == text
        )


def test_all_queries_lists_every_target(models: dict[str, Model]) -> None:
    targets = [(p["title"], t["expr"]) for _, p in all_panels(models) for t in p["targets"]]
    assert sorted(dashboards.all_queries()) == sorted(targets)
    assert len(targets) > 30


# (e) the four dashboards ------------------------------------------------------------------


def test_the_four_dashboards_exist_with_stable_uids_and_titles(models: dict[str, Model]) -> None:
    assert {uid: model["title"] for uid, model in models.items()} == DASHBOARDS
    assert sorted(dashboards.all_dashboards()) == sorted(f"{uid}.json" for uid in DASHBOARDS)


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_dashboard_settings(models: dict[str, Model], uid: str) -> None:
    model = models[uid]
    assert model["tags"] == ["message-send-service"]
    assert model["time"] == {"from": "now-1h", "to": "now"}
    assert model["refresh"] == "30s"
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert list(variables) == ["datasource", *DEPLOYMENT_VARIABLES]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_deployment_variables_list_what_the_ones_before_select(
    models: dict[str, Model], uid: str
) -> None:
    """cluster (may be empty: "All" is `.*`), then one namespace, then replicas (or "All")."""
    variables = {v["name"]: v for v in models[uid]["templating"]["list"]}
    for name, (query, multi, all_value) in DEPLOYMENT_VARIABLES.items():
        variable = variables[name]
        assert variable["type"] == "query", name
        assert variable["datasource"] == DATASOURCE, name
        assert variable["query"] == query, name
        assert variable["multi"] is multi, name
        assert variable["includeAll"] is (all_value is not None), name
        assert variable.get("allValue") == all_value, name
        assert variable["refresh"] == 2, f"{name}: refreshed on time range change"
    # a namespace is one deployment: picking "All" of them would add staging to production
    assert not variables["namespace"]["includeAll"] and not variables["namespace"]["multi"]


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_layout_has_unique_ids_and_no_overlap(models: dict[str, Model], uid: str) -> None:
    everything = list(dashboards.iter_panels(models[uid]["panels"]))
    ids = [p["id"] for p in everything]
    assert len(ids) == len(set(ids))
    boxes = [p["gridPos"] for p in everything]
    for box in boxes:
        assert box["x"] + box["w"] <= 24
    for a, b in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{uid}: panels overlap at {a} and {b}"


# (b) every panel: unit, datasource, description, legends ----------------------------------


def test_every_panel_has_a_unit_and_the_datasource_variable(models: dict[str, Model]) -> None:
    for uid, p in all_panels(models):
        where = f"{uid}: {p['title']}"
        assert p["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
        assert p["datasource"] == DATASOURCE, where
        assert p["targets"], f"{where} has no query"
        for target in p["targets"]:
            assert target["datasource"] == DATASOURCE, where


def test_every_panel_explains_itself(models: dict[str, Model]) -> None:
    for uid, p in all_panels(models):
        where = f"{uid}: {p['title']}"
        assert len(p.get("description", "")) > 20, f"{where} has no description"
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) and all(ref_ids), where
        for target in p["targets"]:
            assert target.get("legendFormat"), f"{where}: a series without a legend"


def test_rows_carry_no_queries(models: dict[str, Model]) -> None:
    for model in models.values():
        rows = [p for p in dashboards.iter_panels(model["panels"]) if p["type"] == "row"]
        assert rows
        for row in rows:
            assert not row.get("targets")
            # an expanded row with nested panels would have them dropped by Grafana
            assert row["collapsed"] or not row["panels"]


# (c) windows and query shape -----------------------------------------------------------------


def test_rates_and_increases_use_the_grafana_windows() -> None:
    for title, expr in dashboards.all_queries():
        calls = RANGE_FUNCTION.findall(expr)
        assert len(calls) == expr.count("rate(") + expr.count("increase("), (title, expr)
        for function, _selector, window in calls:
            allowed = (
                {"$__rate_interval"} if function == "rate" else {"$__rate_interval", "$__range"}
            )
            assert window in allowed, (title, expr)
        assert re.findall(r"\[([^\]]*)\]", expr) == [window for *_, window in calls], (title, expr)


def test_slo_windows_are_instant_queries_on_stat_panels(models: dict[str, Model]) -> None:
    for uid, p in all_panels(models):
        for target in p["targets"]:
            if "$__range" in target["expr"]:
                assert p["type"] == "stat" and target["instant"] is True, (uid, p["title"])


def test_histograms_are_read_through_quantiles_or_bucket_shares() -> None:
    for title, expr in dashboards.all_queries():
        if "_bucket" not in expr:
            continue
        quantile = re.search(r"histogram_quantile\(0\.\d+, sum by \(le\b", expr)
        share = re.search(r'_bucket\{[^}]*le=~?"', expr)
        assert quantile or share, (title, expr)
        if quantile:
            assert "rate(" in expr and "[$__rate_interval]" in expr, (title, expr)


def test_queries_are_plain_promql_once_grafana_macros_are_substituted() -> None:
    for title, expr in dashboards.all_queries():
        for macro, value in {**GRAFANA_MACROS, **VARIABLES}.items():
            expr = expr.replace(macro, value)
        assert "$" not in expr, (title, expr)
        depth = {"(": 0, "{": 0}
        closing = {")": "(", "}": "{"}
        for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):  # ignore string contents
            if char in depth:
                depth[char] += 1
            elif char in closing:
                depth[closing[char]] -= 1
                assert depth[closing[char]] >= 0, (title, expr)
        assert depth == {"(": 0, "{": 0}, (title, expr)
        assert expr.count('"') % 2 == 0, (title, expr)


def test_every_selector_names_the_service_job_and_the_deployment() -> None:
    """job as ever, and the `cluster` and `namespace` variables: one deployment at a time."""
    for title, expr in dashboards.all_queries():
        selectors = [selector for _, selector in SELECTOR.findall(expr)]
        assert selectors, (title, expr)
        for selector in selectors:
            matchers = selector.strip("{}").split(", ")
            assert matchers[: len(DEPLOYMENT)] == list(DEPLOYMENT), (title, selector)


def test_every_query_but_the_slo_figures_follows_the_instance_variable() -> None:
    """Picking replicas narrows every graph; an SLO over the time range stays the deployment's."""
    slo, filtered = 0, 0
    for title, expr in dashboards.all_queries():
        whole_deployment = "[$__range]" in expr
        for _, selector in SELECTOR.findall(expr):
            assert (REPLICAS in selector) is not whole_deployment, (title, selector)
        slo += whole_deployment
        filtered += not whole_deployment
    assert slo >= 5 and filtered > 30


def test_database_wide_gauges_are_never_summed() -> None:
    for title, expr in dashboards.all_queries():
        if re.search(r"messages_(undelivered|oldest_undelivered_age_seconds)\b", expr):
            assert expr.startswith("max(") and "sum" not in expr, (title, expr)


# (f) metric names ---------------------------------------------------------------------------


def test_queries_use_only_metrics_the_service_exports() -> None:
    used = {name for _, expr in dashboards.all_queries() for name in METRIC_NAME.findall(expr)}
    assert used <= SERIES, f"unknown series: {sorted(used - SERIES)}"
    # and the dashboards cover the whole contract
    covered = {name.removesuffix(s) for name in used for s in ("_bucket", "_count", "_sum")}
    assert not (HISTOGRAMS | OTHER_METRICS) - covered, "a contract metric on no dashboard"


def test_pool_panel_is_ready_but_not_on_the_dashboard(models: dict[str, Model]) -> None:
    built = json.loads(json.dumps(database.pool_connections().build(), cls=JSONEncoder))
    assert built["fieldConfig"]["defaults"]["unit"] == "short"
    assert built["datasource"] == DATASOURCE
    assert all("messages_db_pool_connections" in t["expr"] for t in built["targets"])
    everything = json.dumps(list(models.values()))
    assert "messages_db_pool_connections" not in everything


# (d) thresholds match the alert rules -------------------------------------------------------

THRESHOLDS = [
    ("message-send-overview", "Send latency (p50 / p95 / p99)", {0.3}),
    ("message-send-delivery-mode", "Send latency (p50 / p95 / p99)", {0.3}),
    ("message-send-overview", "Send 5xx error ratio", {0.05}),
    ("message-send-delivery", "Delivery latency by stage (p50 / p95 / p99)", {0.2, 1}),
    ("message-send-database", "Insert latency (p50 / p95 / p99)", {0.1}),
    ("message-send-delivery", "Pusher error ratio", {0.05, 0.2}),
    ("message-send-delivery", "Oldest undelivered message age", {60, 300}),
    ("message-send-delivery", "Undelivered backlog", {100}),
    ("message-send-delivery", "Background jobs active by instance", {8}),
    ("message-send-delivery", "Background jobs pending by instance", {1600}),
]


@pytest.mark.parametrize(("uid", "title", "values"), THRESHOLDS)
def test_threshold_lines_match_the_alert_rules(
    models: dict[str, Model], uid: str, title: str, values: set[float]
) -> None:
    p = panel(models, uid, title)
    assert p["type"] == "timeseries"
    assert threshold_values(p) == values
    assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"


@pytest.mark.parametrize(
    ("title", "warning", "critical"),
    [("Pusher error ratio", 0.05, 0.2), ("Oldest undelivered message age", 60, 300)],
)
def test_warning_and_critical_lines_are_told_apart(
    models: dict[str, Model], title: str, warning: float, critical: float
) -> None:
    colors = threshold_colors(panel(models, "message-send-delivery", title))
    assert (colors[warning], colors[critical]) == ("orange", "red")


def test_send_latency_panels_show_the_p99_against_its_line(models: dict[str, Model]) -> None:
    p = panel(models, "message-send-overview", "Send latency (p50 / p95 / p99)")
    assert [e.split(",")[0] for e in exprs(p)] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]
    assert all('route="/api/messages/send"' in e for e in exprs(p))


def test_delivery_latency_is_split_by_stage(models: dict[str, Model]) -> None:
    p = panel(models, "message-send-delivery", "Delivery latency by stage (p50 / p95 / p99)")
    assert all("sum by (le, stage)" in e for e in exprs(p))
    assert all("{{stage}}" in t["legendFormat"] for t in p["targets"])


@pytest.mark.parametrize(
    ("uid", "title", "objective", "needle"),
    [
        ("message-send-overview", "Send availability (SLO 99.9 %)", 0.999, 'status=~"5.."'),
        ("message-send-overview", "Send latency SLO compliance (< 300 ms)", 0.99, 'le="0.3"'),
        ("message-send-delivery", "Pusher call success (SLO 99.9 %)", 0.999, 'outcome="success"'),
        ("message-send-delivery", "Delivered within 1 s (SLO 99 %)", 0.99, 'le=~"1|1\\\\.0"'),
    ],
)
def test_slo_panels_turn_green_at_the_objective(
    models: dict[str, Model], uid: str, title: str, objective: float, needle: str
) -> None:
    p = panel(models, uid, title)
    assert p["type"] == "stat"
    assert p["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert threshold_colors(p) == {objective: "green"}
    assert all(needle in e and "[$__range]" in e for e in exprs(p))


def test_error_budget_is_measured_against_a_tenth_of_a_percent(models: dict[str, Model]) -> None:
    p = panel(models, "message-send-overview", "Send availability error budget remaining")
    assert p["fieldConfig"]["defaults"]["unit"] == "percentunit"
    (expr,) = exprs(p)
    assert expr.startswith("1 - ((") and expr.endswith(") / 0.001)")


def test_delivery_mode_is_named_not_numbered(models: dict[str, Model]) -> None:
    p = panel(models, "message-send-delivery-mode", "Delivery mode in force")
    (mapping,) = p["fieldConfig"]["defaults"]["mappings"]
    texts = {value: result["text"] for value, result in mapping["options"].items()}
    assert texts == {"0": "async", "1": "sync (rollback)"}
    assert exprs(p) == [
        'max(messages_delivery_mode{job="message-send-service", cluster=~"$cluster", '
        'namespace=~"$namespace", instance=~"$instance", mode="sync"})'
    ]
