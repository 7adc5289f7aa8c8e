"""The fault tests' cluster on test hosts (tests/netns.py): PostgreSQL (and a standby), the
sandbox Pusher and two service replicas, each on its own address; steady client traffic from
outside; and the figures each test reports (acknowledged, delivered, lost, duplicates, the
longest wait, the time to recover) with the checks every one of them makes at the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from service.devtools.databases import migrated_database
from service.devtools.postgres import LocalPostgres
from service.devtools.service_env import service_environment
from service.sandbox import SandboxConfig

from ..helpers import JWT_SECRET, auth
from ..netns import Hosts

PG, PG2, PUSHER, A, B = "msgtest-pg", "msgtest-pg2", "msgtest-pusher", "msgtest-a", "msgtest-b"
SERVICE_PORT, SANDBOX_PORT, PG_PORT = 8080, 6001, 5432
DATABASE = "service_test"

CONNECT_TIMEOUT, COMMAND_TIMEOUT = 1.0, 2.0
LEASE = 3.0
#: every replica's settings: short timeouts and lease, quick retries, so faults play out in
#: seconds; the DB_* timeouts bound how long a send may wait (connect + one statement)
QUICK = {
    "DB_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
    "DB_COMMAND_TIMEOUT_SECONDS": str(COMMAND_TIMEOUT),
    "DELIVERY_LEASE_SECONDS": str(LEASE),
    "RELAY_POLL_SECONDS": "0.1",
    "DELIVERY_RETRY_BASE_SECONDS": "0.1",
    "DELIVERY_RETRY_CAP_SECONDS": "0.5",
    "CIRCUIT_COOLDOWN_SECONDS": "0.3",
    "PUSHER_TIMEOUT_SECONDS": "1",
    "LOG_LEVEL": "WARNING",
}


class NamespacedPostgres(LocalPostgres):
    """A LocalPostgres run on test host `host`, listening on its address, trusting the hosts'
    network (replication included, for a standby)."""

    host: str = PG

    def start(self) -> None:
        hba = self.data_dir / "pg_hba.conf"
        if "10.77.0.0/24" not in hba.read_text():
            with hba.open("a") as lines:
                lines.write("host all all 10.77.0.0/24 trust\n")
                lines.write("host replication all 10.77.0.0/24 trust\n")
        super().start()

    def _command(self, tool: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.host, *super()._command(tool, *args)]

    def run_tool(self, tool: str, *args: str) -> None:
        """A PostgreSQL program (pg_basebackup, pg_ctl promote, …) on this server's host."""
        self._run(tool, *args)


def postgres_on(host: str, address: str, base: Path) -> NamespacedPostgres:
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)  # the postgres system user must reach its data folder
    server = NamespacedPostgres(base / "data", PG_PORT, durable=False, listen_address=address)
    server.host = host
    return server


@dataclass
class Send:
    replica: str
    sender: int
    client_id: str
    started: float
    status: int | str = 0  # an HTTP status, or the client-side error's name
    waited: float = 0.0
    message_id: int | None = None

    @property
    def answered(self) -> float:
        return self.started + self.waited


@dataclass
class Traffic:
    """Steady sends from outside: one every `interval` seconds per lane, each in its own task
    (a slow answer does not slow the stream); every send is kept with its outcome."""

    session: aiohttp.ClientSession
    sends: list[Send] = field(default_factory=list)
    running: bool = True
    _lanes: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, replicas: list[str], *, interval: float = 0.02) -> None:
        self._lanes += [
            asyncio.create_task(self._lane(replica, lane, interval))
            for lane, replica in enumerate(replicas, start=len(self._lanes))
        ]

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self._lanes)

    async def cancel(self) -> None:
        self.running = False
        for lane in self._lanes:
            lane.cancel()
        await asyncio.gather(*self._lanes, return_exceptions=True)

    async def send(self, replica: str, sender: int, client_id: str) -> Send:
        send = Send(replica, sender, client_id, time.monotonic())
        self.sends.append(send)
        body = {"recipientId": 1000 + sender, "content": client_id, "clientMessageId": client_id}
        try:
            async with self.session.post(
                f"http://{replica}:{SERVICE_PORT}/api/messages/send",
                json=body,
                headers=auth(sender),
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                send.status = response.status
                if response.status == 200:
                    send.message_id = int((await response.json())["message"]["id"])
                else:
                    await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            send.status = type(error).__name__
        send.waited = time.monotonic() - send.started
        return send

    async def _lane(self, replica: str, lane: int, interval: float) -> None:
        pending: set[asyncio.Task[Send]] = set()
        n = 0
        while self.running:
            task = asyncio.create_task(self.send(replica, 1 + lane * 10 + n % 10, f"{lane}-{n}"))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            await asyncio.sleep(interval)
        if pending:
            await asyncio.gather(*pending)

    def acknowledged(self) -> set[int]:
        return {s.message_id for s in self.sends if s.message_id is not None}

    def between(self, start: float, end: float, replica: str | None = None) -> list[Send]:
        return [
            s
            for s in self.sends
            if start <= s.started < end and (replica is None or s.replica == replica)
        ]


@dataclass
class Figures:
    """What each fault test reports (and the closing note tabulates)."""

    scenario: str
    acknowledged: int
    delivered: int
    lost: int
    duplicates: int  # events beyond the first for an acknowledged message
    longest_wait: float
    recovered_after: float
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self) -> None:
        line = json.dumps({"scenario": self.scenario, **self.__dict__}, default=str)
        print(f"\nFAULT FIGURES {line}")
        if target := os.environ.get("FAULT_FIGURES"):
            with open(target, "a") as figures:
                figures.write(line + "\n")


@dataclass
class Cluster:
    """The hosts' programs; `start_replicas` and friends return once they answer."""

    hosts: Hosts
    tmp: Path
    session: aiohttp.ClientSession
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    servers: list[NamespacedPostgres] = field(default_factory=list)
    database_url: str = ""

    async def start_stack(self, *replicas: str) -> NamespacedPostgres:
        """PostgreSQL (migrated), the sandbox and `replicas`, on their hosts: every test's
        starting point but the failover's (which needs a standby first)."""
        server = await self.start_postgres()
        await self.migrate(server)
        await self.start_sandbox()
        await self.start_replicas(*replicas)
        return server

    def address(self, host: str) -> str:
        return self.hosts.addresses[host]

    async def start_postgres(self, host: str = PG) -> NamespacedPostgres:
        server = postgres_on(host, self.address(host), self.tmp / host)
        await asyncio.to_thread(server.initialise)
        await asyncio.to_thread(server.start)
        self.servers.append(server)
        return server

    async def migrate(self, server: NamespacedPostgres) -> str:
        self.database_url = await migrated_database(server, DATABASE)
        return self.database_url

    async def start_sandbox(self) -> None:
        argv = ["-m", "service.sandbox", "--host", "0.0.0.0", "--port", str(SANDBOX_PORT)]
        env = service_environment(
            database_url="", sandbox=SandboxConfig(), sandbox_port=0, jwt_secret=""
        )
        await self._run(PUSHER, [sys.executable, *argv], env)
        await self.wait_http(f"{self.sandbox}/_sandbox/events")

    async def start_replicas(self, *hosts: str, database_url: str = "", **env: str) -> None:
        environment = service_environment(
            database_url=database_url or self.database_url,
            sandbox=SandboxConfig(),
            sandbox_port=SANDBOX_PORT,
            jwt_secret=JWT_SECRET,
            HOST="0.0.0.0",
            PORT=str(SERVICE_PORT),
            PUSHER_HOST=self.address(PUSHER),
            **{**QUICK, **env},
        )
        for host in hosts:
            await self._run(host, [sys.executable, "-m", "service", "serve"], environment)
        for host in hosts:
            await self.wait_http(f"{self.base(host)}/readyz")

    async def _run(self, host: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.tmp / f"{host}.log"
        self.processes[host] = await self.hosts.run(host, argv, env, log=log)

    def base(self, host: str) -> str:
        return f"http://{self.address(host)}:{SERVICE_PORT}"

    @property
    def sandbox(self) -> str:
        return f"http://{self.address(PUSHER)}:{SANDBOX_PORT}"

    def signal(self, host: str, signum: signal.Signals) -> None:
        self.processes[host].send_signal(signum)

    async def wait_http(self, url: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.status(url, timeout=1) == 200:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{url} did not answer 200 within {timeout}s")

    async def status(self, url: str, timeout: float = 5.0) -> int | str:
        try:
            async with self.session.get(
                url, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            return type(error).__name__

    async def until(self, url: str, status: int, timeout: float) -> float:
        """Seconds until GET `url` answers `status`."""
        start = time.monotonic()
        seen: list[int | str] = []
        while (last := await self.status(url)) != status:
            seen.append(last)
            assert time.monotonic() - start < timeout, f"{url} never answered {status}: {seen}"
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def until_sends_succeed(self, host: str, traffic: Traffic, timeout: float) -> float:
        """Seconds until a send to `host` answers 200 (the probe sends count as traffic)."""
        start = time.monotonic()
        while (
            await traffic.send(self.address(host), 99, f"probe-{time.monotonic()}")
        ).status != 200:
            assert time.monotonic() - start < timeout, f"{host} never took sends again"
            await asyncio.sleep(0.1)
        return time.monotonic() - start

    async def fault(self, **spec: Any) -> None:
        async with self.session.post(f"{self.sandbox}/_sandbox/faults", json=spec) as response:
            assert response.status == 200, await response.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.sandbox}/_sandbox/faults") as response:
            assert response.status == 200, await response.text()

    async def events(self) -> list[int]:
        """The message id of every event Pusher accepted, repeats included."""
        async with self.session.get(f"{self.sandbox}/_sandbox/events") as response:
            body: dict[str, Any] = await response.json()
        return [int(json.loads(event["data"])["id"]) for event in body["events"]]

    async def metrics(self, host: str) -> dict[str, float]:
        """`name{label="…",…}` -> value, as the replica exposes them now."""
        async with self.session.get(f"{self.base(host)}/metrics") as response:
            text = await response.text()
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return found

    async def until_delivered(self, acknowledged: set[int], timeout: float = 30) -> list[int]:
        """Every event so far, once each acknowledged message has one."""
        deadline = time.monotonic() + timeout
        while not acknowledged <= set(events := await self.events()):
            missing = sorted(acknowledged - set(events))
            assert time.monotonic() < deadline, f"never delivered: {missing[:20]}"
            await asyncio.sleep(0.2)
        return events

    async def stop(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGCONT)  # a frozen one cannot die otherwise
                process.kill()
                await process.wait()
        for server in self.servers:
            await asyncio.to_thread(_stop_quietly, server)


def _stop_quietly(server: NamespacedPostgres) -> None:
    with contextlib.suppress(Exception):  # already stopped (a test's fault), or host gone
        server.kill()


async def check_stored(database_url: str, traffic: Traffic, timeout: float = 15) -> dict[str, int]:
    """Every acknowledged send is stored exactly once under the id it was answered with, and
    is marked delivered (not pending, not dead-lettered): the end state every fault test
    demands. Delivery marks are written in batches after Pusher answers, so they may trail
    the events a little: waited for, up to `timeout`."""
    acknowledged = {(s.sender, s.client_id): s.message_id for s in traffic.sends if s.status == 200}
    deadline = time.monotonic() + timeout
    while True:
        connection = await asyncpg.connect(database_url, timeout=5)
        try:
            rows = await connection.fetch(STORED_SENDS)
        finally:
            await connection.close()
        by_key = {(int(r["sender_id"]), str(r["client_message_id"])): r for r in rows}
        missing = [key for key in acknowledged if key not in by_key]
        assert not missing, f"acknowledged but not stored: {missing[:20]}"
        wrong = [k for k, i in acknowledged.items() if by_key[k]["id"] != i or by_key[k]["n"] != 1]
        assert not wrong, f"stored twice or under another id: {wrong[:20]}"
        dead = [k for k in acknowledged if by_key[k]["dead"]]
        assert not dead, f"acknowledged and dead-lettered: {dead[:20]}"
        undelivered = [k for k in acknowledged if not by_key[k]["delivered"]]
        if not undelivered:
            return {"stored": len(rows), "acknowledged_stored": len(acknowledged)}
        assert time.monotonic() < deadline, f"never marked delivered: {undelivered[:20]}"
        await asyncio.sleep(0.2)


#: per (sender, clientMessageId): rows, the first id, all delivered, any dead-lettered
STORED_SENDS = """
SELECT sender_id, client_message_id, count(*) AS n, min(id) AS id,
       bool_and(delivered_at IS NOT NULL) AS delivered,
       bool_or(dead_lettered_at IS NOT NULL) AS dead
FROM messages GROUP BY sender_id, client_message_id
"""


def figures(
    scenario: str,
    traffic: Traffic,
    events: list[int],
    *,
    recovered_after: float,
    **extra: Any,
) -> Figures:
    acknowledged = traffic.acknowledged()
    counts = Counter(events)
    found = Figures(
        scenario=scenario,
        acknowledged=len(acknowledged),
        delivered=len(acknowledged & set(counts)),
        lost=len(acknowledged - set(counts)),
        duplicates=sum(n - 1 for id_, n in counts.items() if id_ in acknowledged),
        longest_wait=round(max(s.waited for s in traffic.sends), 2),
        recovered_after=round(recovered_after, 2),
        extra=extra,
    )
    found.report()
    return found
