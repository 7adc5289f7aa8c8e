"""The paging path end to end: Debian's Prometheus with the project's rules and Debian's
Alertmanager with `deploy/alertmanager/alertmanager.yml` beside the running service, the
receivers' webhooks pointed at a receiver inside the test.

- With the sandbox Pusher failing, the Pusher alerts reach the receiver their severity routes
  them to (critical pages, warning goes to working hours) with `severity`, `summary`,
  `description` and `runbook_url`; when Pusher answers again, resolved notifications arrive.
- With every replica down (there is one), `MessageSendServiceDown` pages and inhibits the
  deployment's other alerts (`MessageSendReplicaDown` fires in Prometheus and is never
  notified) but not the Watchdog; when a replica is back, its resolved notification arrives.

Both files are copies *derived at test time* from the real ones, never kept by hand: the rules
with every `for:` shortened (minutes become seconds, so the alerts keep their order: the
service-down alert still fires before the replica-down one it must inhibit), the Alertmanager
config with `group_wait`/`group_interval` of 1s and the webhook URLs replaced; expressions,
labels, annotations, routes, grouping and inhibit rules are the real ones. The durations
themselves are covered by the promtool tests in alerts/tests/."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml
from aiohttp import web

from service.devtools.postgres import free_port
from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import auth, required_tool
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alerts/message-send-service.rules.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"
NAMESPACE = "production"
#: one expectation (an alert firing, resolving, a notification) may take this long on a
#: loaded 2-core machine; the longest, PusherCircuitOpen resolving, needs its [1m] window
PATIENCE = 120.0
SERVICE_ENV = {"PUSHER_PROBE_SECONDS": "1", "LOG_LEVEL": "ERROR"}
DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
MILLISECONDS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MILLISECONDS |= {"w": 7 * MILLISECONDS["d"], "y": 365 * MILLISECONDS["d"]}


def alerting_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def minutes_as_seconds(duration: str) -> str:
    """A Prometheus duration divided by 60 ("5m" -> "5s"), as Prometheus spells durations."""
    parts = DURATION_PART.findall(duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    milliseconds = sum(int(number) * MILLISECONDS[unit] for number, unit in parts) // 60
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def derived_rules(path: Path) -> None:
    """The real rules file with every `for:` (and `keep_firing_for:`) 60 times shorter."""
    document = yaml.safe_load(RULES.read_text())
    shortened = 0
    for group in document["groups"]:
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = minutes_as_seconds(rule[key])
                    shortened += 1
    assert shortened, "no `for:` in the rules: the derivation has nothing to do"
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def derived_alertmanager_config(path: Path, webhook_base: str) -> None:
    """The real config with group_wait/group_interval of 1s wherever they are set, and every
    receiver's webhooks posting to `webhook_base/<receiver name>`."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        for key in ("group_wait", "group_interval"):
            if key in route or route is config["route"]:
                route[key] = "1s"
        routes += route.get("routes", [])
    for receiver in config["receivers"]:
        kinds = {key for key in receiver if key.endswith("_configs")}
        # a pager or chat integration other than a webhook needs its own test double here
        assert kinds <= {"webhook_configs"}, f"{receiver['name']}: {kinds}"
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{webhook_base}/{receiver['name']}"
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def expected_receiver(labels: dict[str, str]) -> str:
    """Where the config's header says an alert goes: critical pages, warning is for working
    hours, the Watchdog goes to the dead man's switch (info goes to "null": never notified)."""
    if labels["alertname"] == "Watchdog":
        return "deadmans-switch"
    return {"critical": "pager", "warning": "working-hours"}[labels["severity"]]


@dataclass
class Notified:
    """One alert of one webhook notification."""

    path: str  # the receiver named by the URL the notification was posted to
    receiver: str  # the receiver named in the notification's body
    status: str  # the alert's own: "firing" or "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]


@dataclass
class WebhookReceiver:
    """Records every alert of every notification Alertmanager posts, and prints it."""

    base: str = ""
    notified: list[Notified] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        for alert in body["alerts"]:
            notified = Notified(
                request.match_info["receiver"],
                body["receiver"],
                alert["status"],
                alert["labels"],
                alert["annotations"],
            )
            self.notified.append(notified)
            print(
                f"[paging] t+{time.monotonic() - self.started:5.1f}s "
                f"receiver={notified.receiver} status={notified.status} "
                f"alertname={notified.alertname} severity={notified.labels.get('severity')}"
            )
        return web.Response()

    def seen(self) -> str:
        return ", ".join(f"{n.receiver}:{n.alertname}:{n.status}" for n in self.notified) or "none"

    async def arrival(self, alertname: str, status: str, since: int = 0) -> Notified:
        """The first notification of `alertname` with `status` from `notified[since:]`."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            for notified in self.notified[since:]:
                if notified.alertname == alertname and notified.status == status:
                    return notified
            await asyncio.sleep(0.2)
        raise AssertionError(f"no {status} {alertname} within {PATIENCE}s; got {self.seen()}")


@dataclass
class Prometheus:
    base: str
    targets: Path

    def scrape(self, service: ServiceProcess) -> None:
        """Point the scrape job at `service` (file_sd: the replacement replica of a deployment
        gets a new port); replaced atomically so Prometheus never reads half a file."""
        target = {
            "targets": [f"127.0.0.1:{service.port}"],
            "labels": {"namespace": NAMESPACE, "instance": f"{NAMESPACE}-0"},
        }
        written = self.targets.with_suffix(".tmp")
        written.write_text(json.dumps([target]))
        os.replace(written, self.targets)


@contextlib.asynccontextmanager
async def running(args: list[str], log: Path, ready: str) -> AsyncIterator[None]:
    """A process started, ready when `ready` answers 200, stopped afterwards whatever happens."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    if process.returncode is not None:
                        output_so_far = await asyncio.to_thread(log.read_text)
                        raise AssertionError(f"{args[0]} exited:\n{output_so_far}")
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with session.get(ready) as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.2)
                else:
                    output_so_far = await asyncio.to_thread(log.read_text)
                    raise AssertionError(f"{args[0]} not ready:\n{output_so_far}")
            yield
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


class Replicas:
    """The service's replicas started by the test, all killed at the end."""

    def __init__(self, database_url: str, sandbox: Sandbox) -> None:
        self._database_url, self._sandbox = database_url, sandbox
        self.started: list[ServiceProcess] = []

    async def start(self) -> ServiceProcess:
        service = ServiceProcess(self._database_url, self._sandbox, **SERVICE_ENV)
        self.started.append(service)
        return await service.start()


@pytest.fixture
async def replicas(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection
) -> AsyncIterator[Replicas]:
    started = Replicas(database_url, sandbox)
    try:
        yield started
    finally:
        for service in started.started:
            await service.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/{receiver}", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        hook.base = f"http://127.0.0.1:{port}"
        yield hook
    finally:
        await runner.cleanup()


@pytest.fixture
async def alertmanager(tmp_path: Path, receiver: WebhookReceiver) -> AsyncIterator[str]:
    binary = required_tool("prometheus-alertmanager", "prometheus-alertmanager")
    derived_alertmanager_config(tmp_path / "alertmanager.yml", receiver.base)
    base = f"http://127.0.0.1:{free_port()}"
    args = [
        binary,
        f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address={base.removeprefix('http://')}",
        "--cluster.listen-address=",  # one Alertmanager, no gossip
    ]
    async with running(args, tmp_path / "alertmanager.log", f"{base}/-/ready"):
        yield base


@pytest.fixture
async def prometheus(
    tmp_path: Path, alertmanager: str, replicas: Replicas
) -> AsyncIterator[Prometheus]:
    binary = required_tool("prometheus", "prometheus")
    derived_rules(tmp_path / "rules.yml")
    # the first replica is a target before Prometheus starts: MessageSendServiceAbsent
    # (absent(up)) must not fire while the first scrape is pending
    running_prometheus = Prometheus(f"http://127.0.0.1:{free_port()}", tmp_path / "targets.json")
    running_prometheus.scrape(await replicas.start())
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "message-send-service",
                "file_sd_configs": [
                    {"files": [str(running_prometheus.targets)], "refresh_interval": "1s"}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    args = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'prometheus'}",
        f"--web.listen-address={running_prometheus.base.removeprefix('http://')}",
        # alerts of the first evaluations, before Alertmanager is discovered, are dropped and
        # a firing alert is sent again only after this delay (1m by default): the Watchdog
        # would take a minute to arrive
        "--rules.alert.resend-delay=5s",
    ]
    async with running(args, tmp_path / "prometheus.log", f"{running_prometheus.base}/-/ready"):
        yield running_prometheus


@contextlib.asynccontextmanager
async def sending(service: ServiceProcess) -> AsyncIterator[Counter[int]]:
    """Sends from three users, four a second, until the block ends: each is a Pusher call."""
    statuses: Counter[int] = Counter()

    async def send(session: aiohttp.ClientSession) -> None:
        for n in itertools.count():
            body = {"recipientId": 10, "content": f"paging {n}"}
            async with session.post(
                f"{service.base}/api/messages/send", json=body, headers=auth(1 + n % 3)
            ) as response:
                statuses[response.status] += 1
            await asyncio.sleep(0.25)

    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(send(session))
        try:
            yield statuses
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with session.get(url, params=params) as response:
        assert response.status == 200, f"{url}: {response.status} {await response.text()}"
        return await response.json()


async def until(check: Callable[[], Any], what: str) -> Any:
    """Poll the coroutine `check()` until it returns something truthy; fail after PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what}: not within {PATIENCE}s")


def assert_as_configured(notified: Notified) -> None:
    """The alert as the rules label and annotate it, at the receiver the config routes it to."""
    rule = alerting_rules()[notified.alertname]
    assert notified.path == notified.receiver, notified
    assert notified.labels["severity"] == rule["labels"]["severity"], notified
    assert notified.receiver == expected_receiver(notified.labels), notified
    for key in ("summary", "description", "runbook_url"):
        assert notified.annotations.get(key, "").strip(), f"{notified.alertname}: no {key}"
        assert "{{" not in notified.annotations[key], f"{notified.alertname}: {key} unrendered"
    assert notified.annotations["runbook_url"] == f"RUNBOOK.md#{notified.alertname.lower()}"
    if "namespace" in notified.labels:  # the rules promise descriptions name the deployment
        assert NAMESPACE in notified.annotations["description"], notified


@pytest.mark.timeout(420)
async def test_alerts_page_resolve_and_inhibit_through_the_real_alertmanager(
    prometheus: Prometheus,
    alertmanager: str,
    receiver: WebhookReceiver,
    replicas: Replicas,
    sandbox: Sandbox,
) -> None:
    started = time.monotonic()
    (service,) = replicas.started
    async with aiohttp.ClientSession() as session:
        # the derivation kept every rule; the pipeline works before anything fails
        loaded = (await get_json(session, f"{prometheus.base}/api/v1/rules"))["data"]["groups"]
        alerting = {
            r["name"] for group in loaded for r in group["rules"] if r["type"] == "alerting"
        }
        assert alerting == set(alerting_rules())
        await receiver.arrival("Watchdog", "firing")

        async def pusher_up() -> bool:
            data = await get_json(
                session, f"{prometheus.base}/api/v1/query", query="messages_pusher_up == 1"
            )
            return bool(data["data"]["result"])

        await until(pusher_up, "Prometheus scraping a replica that reaches Pusher")

        # 1. Pusher fails: the probe (PusherUnavailable, critical) and the calls of the sends
        # (the breaker: PusherCircuitOpen, warning; the error ratio: PusherErrorRateCritical
        # and PusherErrorRateHigh) each raise an alert
        sandbox.state.faults.set(Fault(kind="status", status=503))
        async with sending(service) as statuses:
            firing = {
                name: await receiver.arrival(name, "firing")
                for name in (
                    "PusherUnavailable",
                    "PusherErrorRateCritical",
                    "PusherCircuitOpen",
                    "PusherErrorRateHigh",
                )
            }
            for notified in firing.values():
                assert_as_configured(notified)
            assert firing["PusherUnavailable"].receiver == "pager"
            assert firing["PusherErrorRateCritical"].receiver == "pager"
            assert firing["PusherCircuitOpen"].receiver == "working-hours"
            assert firing["PusherErrorRateHigh"].receiver == "working-hours"

            # 2. Pusher answers again: the probe's alert resolves at once, the error ratios'
            # as the sends' successful calls outnumber the failed ones in their [5m] windows,
            # the breaker's after its [1m] window (the windows are the rules' own: only `for:`
            # is shortened). PusherCallErrorBudgetBurn (critical, 0.0144 of calls over 1h and
            # 5m) stays firing within the test; the service going down inhibits it below.
            recovered_at = len(receiver.notified)
            sandbox.state.faults.clear()
            for name in firing:
                resolved = await receiver.arrival(name, "resolved", since=recovered_at)
                assert resolved.receiver == firing[name].receiver
        assert statuses and set(statuses) == {200}, statuses  # sends never depend on Pusher

        # 3. Every replica down: the service-down alert pages and inhibits the deployment's
        # other alerts, MessageSendReplicaDown (which fires with it) among them
        down_at = len(receiver.notified)
        await service.stop()
        down = await receiver.arrival("MessageSendServiceDown", "firing", since=down_at)
        assert_as_configured(down)
        assert down.receiver == "pager"

        async def replica_down_fires() -> bool:
            alerts = (await get_json(session, f"{prometheus.base}/api/v1/alerts"))["data"]
            return any(
                alert["labels"]["alertname"] == "MessageSendReplicaDown"
                and alert["state"] == "firing"
                for alert in alerts["alerts"]
            )

        await until(replica_down_fires, "MessageSendReplicaDown firing in Prometheus")

        async def inhibited() -> list[dict[str, Any]] | None:
            alerts: list[dict[str, Any]] = await get_json(session, f"{alertmanager}/api/v2/alerts")
            names = {alert["labels"]["alertname"]: alert for alert in alerts}
            replica = names.get("MessageSendReplicaDown")
            return alerts if replica and replica["status"]["state"] == "suppressed" else None

        alerts = await until(inhibited, "MessageSendReplicaDown inhibited in Alertmanager")
        (source,) = [a for a in alerts if a["labels"]["alertname"] == "MessageSendServiceDown"]
        assert source["status"]["state"] == "active"
        deployment = [
            alert
            for alert in alerts
            if alert["labels"].get("namespace") == NAMESPACE and alert is not source
        ]
        # PusherCallErrorBudgetBurn and the delivery latency alerts of the outage among them
        for alert in deployment:
            assert alert["status"]["inhibitedBy"] == [source["fingerprint"]], alert["labels"]
            print(f"[paging] inhibited by MessageSendServiceDown: {alert['labels']['alertname']}")
        # the dead man's switch is not the deployment's: the service down must not silence it
        (watchdog,) = [a for a in alerts if a["labels"]["alertname"] == "Watchdog"]
        assert watchdog["status"]["state"] == "active"
        # inhibited, not merely late: several group_waits (1s) after it reached Alertmanager
        await asyncio.sleep(5)
        assert not [n for n in receiver.notified if n.alertname == "MessageSendReplicaDown"]

        # a replica is back (a new process, so a new port: the scrape job follows it)
        back_at = len(receiver.notified)
        prometheus.scrape(await replicas.start())
        resolved = await receiver.arrival("MessageSendServiceDown", "resolved", since=back_at)
        assert resolved.receiver == "pager"

    for notified in receiver.notified:  # every notification of the run, not just the awaited
        assert_as_configured(notified)
    print(f"[paging] {len(receiver.notified)} alerts notified in {time.monotonic() - started:.0f}s")
