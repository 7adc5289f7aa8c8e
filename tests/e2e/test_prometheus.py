"""Debian's Prometheus scraping the real service with the project's scrape job and rules:
every dashboard query and every rule expression is accepted, and the dashboards get data.

Prometheus scrapes the service twice, as two deployments (namespaces `production` and `staging`,
each with its own instance name, no `cluster` label): with `$namespace` picked, a dashboard sees
that deployment's series only, and the rules keep the two apart."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

import dashboards
from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import auth
from ..jwks_provider import AUDIENCE, ISSUER, Provider
from .processes import ServiceProcess
from .prometheus_server import running_prometheus

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}
#: namespace -> the instance name its scrape of the service gets
DEPLOYMENTS = {"production": "production-0", "staging": "staging-0"}
SELECTOR = re.compile(r"\b[a-z_:]+\{[^}]*\}")


def as_promql(expr: str, namespace: str = "production") -> str:
    """What Grafana sends: macros, and the variables as picked ("All" is `.*`; no cluster
    label exists here, which "All" matches)."""
    variables = {"$cluster": ".*", "$namespace": namespace, "$instance": ".*"}
    for name, value in {**GRAFANA_MACROS, **variables}.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unsubstituted Grafana variable in {expr!r}"
    return expr


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "alerts").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


@pytest.fixture
async def prometheus(tmp_path: Path, service_under_load: ServiceProcess) -> AsyncIterator[str]:
    job = {
        "job_name": "message-send-service",
        # the one service, scraped as two deployments, the way Kubernetes service discovery
        # labels pods
        "static_configs": [
            {
                "targets": [f"127.0.0.1:{service_under_load.port}"],
                "labels": {"namespace": namespace, "instance": instance},
            }
            for namespace, instance in DEPLOYMENTS.items()
        ],
    }
    async with running_prometheus(tmp_path, [job], "--enable-feature=exemplar-storage") as url:
        yield url


@pytest.fixture
async def service_under_load(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection, provider: Provider
) -> AsyncIterator[ServiceProcess]:
    """With an identity provider too: the panels of its keys must get data as well."""
    service = ServiceProcess(
        database_url,
        sandbox,
        AUTH_JWKS_URL=provider.url,
        AUTH_ISSUER=ISSUER,
        AUTH_AUDIENCE=AUDIENCE,
        PUSHER_PROBE_SECONDS="1",
        RELAY_POLL_SECONDS="0.2",
        DELIVERY_RETRY_BASE_SECONDS="0.2",
        LOG_LEVEL="ERROR",
    )
    await service.start()
    yield service
    await service.stop()


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> dict[str, Any]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as response:
        body = await response.json()
    assert body["status"] == "success", f"{promql}: {body.get('error')}"
    data: dict[str, Any] = body["data"]
    return data


async def label_values(
    session: aiohttp.ClientSession, base: str, variable_query: str, namespace: str
) -> set[str]:
    """A Grafana `label_values(series, label)` variable query, as Grafana runs it."""
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable_query)
    assert match, variable_query
    series, label = as_promql(match.group(1), namespace), match.group(2)
    async with session.get(
        f"{base}/api/v1/label/{label}/values", params={"match[]": series}
    ) as response:
        body = await response.json()
    assert body["status"] == "success", f"{variable_query}: {body.get('error')}"
    return set(body["data"])


async def wait_for_scrapes(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(60):  # rates need a few scrapes after the traffic
        data = await query(session, base, "count_over_time(messages_saved_total[1m])")
        if data["result"] and float(data["result"][0]["value"][1]) >= 10:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("Prometheus never scraped the service")


async def drive_traffic(service: ServiceProcess, sandbox: Sandbox, seconds: float) -> None:
    """Sends, reads, receipts and bad requests, with Pusher failing now and then."""
    deadline = asyncio.get_running_loop().time() + seconds
    round_ = 0
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if round_ % 5 == 1:
                sandbox.state.faults.set(Fault("status", status=503, calls=2))
            if round_ == 3:
                sandbox.state.faults.set(Fault("status", status=413, calls=1))  # a dead letter
            message = await service.send(session, 1 + round_ % 3, 10, f"m{round_}")
            async with session.post(
                f"{service.base}/api/messages/{message['id']}/receipt", headers=auth(10)
            ) as response:
                assert response.status == 200
            async with session.get(
                f"{service.base}/api/conversations/{message['conversationId']}/messages",
                headers=auth(10),
            ) as response:
                assert response.status == 200
            async with session.post(
                f"{service.base}/api/messages/send", json={"recipientId": 2}, headers=auth(1)
            ) as response:
                assert response.status == 422
            round_ += 1
            await asyncio.sleep(0.2)


async def test_prometheus_accepts_every_query_and_the_dashboards_get_data(
    prometheus: str, service_under_load: ServiceProcess, sandbox: Sandbox
) -> None:
    await drive_traffic(service_under_load, sandbox, seconds=12)
    async with aiohttp.ClientSession() as session:
        await wait_for_scrapes(session, prometheus)

        empty = []
        panel_queries = dashboards.all_queries()
        for title, expr in panel_queries:
            data = await query(session, prometheus, as_promql(expr))
            if not data["result"]:
                empty.append(f"{title}: {expr}")
        rules = rule_expressions()
        for _name, expr in rules:
            await query(session, prometheus, expr)  # accepted (parsed and evaluated)

        async with session.get(f"{prometheus}/api/v1/rules") as response:
            groups = (await response.json())["data"]["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        async with session.get(
            f"{prometheus}/api/v1/query_exemplars",
            params={
                "query": "messages_db_insert_duration_seconds_bucket",
                "start": "0",
                "end": "9999999999",
            },
        ) as response:
            exemplars = (await response.json())["status"]

    print(
        f"\nreal Prometheus: {len(panel_queries) - len(empty)} of {len(panel_queries)} panel queries returned data; "
        f"{len(rules)} rule expressions accepted; {len(loaded)} rules loaded"
    )
    assert len(loaded) == len(rules)
    # "unknown" is a group (with a longer interval) not evaluated yet; its expressions were
    # evaluated above all the same. An error is what must never happen.
    assert not [r["name"] for r in loaded if r["health"] == "err"]
    assert sum(r["health"] == "ok" for r in loaded) > 0
    assert exemplars == "success"
    assert not empty, "panel queries without data:\n" + "\n".join(empty)


async def test_a_dashboard_with_one_namespace_picked_sees_only_that_deployment(
    prometheus: str, service_under_load: ServiceProcess, sandbox: Sandbox
) -> None:
    await drive_traffic(service_under_load, sandbox, seconds=6)
    model = dashboards.all_dashboards()["message-send-overview.json"]
    variables = {v["name"]: v for v in model["templating"]["list"] if v["type"] == "query"}
    async with aiohttp.ClientSession() as session:
        await wait_for_scrapes(session, prometheus)

        # the variables: no cluster label here (the list is empty, "All" matches), both
        # namespaces, and the picked namespace's replica only
        assert await label_values(session, prometheus, variables["cluster"]["query"], "") == set()
        namespaces = await label_values(session, prometheus, variables["namespace"]["query"], "")
        assert namespaces == set(DEPLOYMENTS)
        instances = await label_values(
            session, prometheus, variables["instance"]["query"], "staging"
        )
        assert instances == {"staging-0"}

        # every selector of every panel query, with staging picked, selects staging's series
        selectors = {
            selector
            for _, expr in dashboards.all_queries()
            for selector in SELECTOR.findall(as_promql(expr, "staging"))
        }
        with_data = 0
        for selector in sorted(selectors):
            result = (await query(session, prometheus, selector))["result"]
            seen = {series["metric"].get("namespace") for series in result}
            assert seen <= {"staging"}, f"{selector} selects {seen}"
            with_data += bool(result)
        assert with_data > len(selectors) // 2, f"{with_data} of {len(selectors)} with data"

        # whole panel queries: the replica count is staging's one, not both deployments' two;
        # per-instance panels list staging's replica only
        (build_info,) = [
            expr for title, expr in dashboards.all_queries() if title == "Build version (replicas)"
        ]
        staging = (await query(session, prometheus, as_promql(build_info, "staging")))["result"]
        assert [float(series["value"][1]) for series in staging] == [1]
        both = await query(session, prometheus, as_promql(build_info, "staging|production"))
        assert [float(series["value"][1]) for series in both["result"]] == [2]
        per_instance = [expr for _, expr in dashboards.all_queries() if "by (instance" in expr]
        assert per_instance
        for expr in per_instance:
            result = (await query(session, prometheus, as_promql(expr, "staging")))["result"]
            assert result, expr
            assert {series["metric"].get("instance") for series in result} == {"staging-0"}, expr

        # the recording rules keep the deployments apart: one ratio per namespace
        for _ in range(40):
            data = await query(session, prometheus, "job:messages_send_errors:ratio_rate5m")
            recorded = {series["metric"].get("namespace") for series in data["result"]}
            if recorded == set(DEPLOYMENTS):
                break
            await asyncio.sleep(0.5)
        assert recorded == set(DEPLOYMENTS), recorded
        assert all(series["metric"]["job"] == "message-send-service" for series in data["result"])
