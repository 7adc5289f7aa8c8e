"""Debian's Prometheus scraping the real service with the project's scrape job and rules:
every dashboard query and every rule expression is accepted, and the dashboards get data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

import dashboards
from service.devtools.postgres import free_port
from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import auth, required_tool
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


def prometheus_binary() -> str:
    return required_tool("prometheus", "prometheus")


def as_promql(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
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
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted((ROOT / "alerts").glob("*.rules.yml"))],
        "scrape_configs": [
            {
                "job_name": "message-send-service",
                "static_configs": [{"targets": [f"127.0.0.1:{service_under_load.port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        prometheus_binary(),
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    await process.wait()


@pytest.fixture
async def service_under_load(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection
) -> AsyncIterator[ServiceProcess]:
    service = ServiceProcess(
        database_url,
        sandbox,
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
        for _ in range(60):  # rates need a few scrapes after the traffic
            data = await query(session, prometheus, "count_over_time(messages_saved_total[1m])")
            if data["result"] and float(data["result"][0]["value"][1]) >= 10:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("Prometheus never scraped the service")

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
