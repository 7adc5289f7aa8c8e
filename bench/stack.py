"""The processes a benchmark measures: PostgreSQL, the sandbox Pusher server, the service."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import aiohttp

from service.devtools.databases import migrated_database
from service.devtools.postgres import LocalPostgres, free_port
from service.devtools.service_env import service_environment
from service.sandbox import SandboxConfig

JWT_SECRET = "bench-jwt-secret-long-enough-for-hs256-signing"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


class SandboxEvent(TypedDict):
    """An event the sandbox accepted, as its control API lists it."""

    channel: str
    name: str
    data: str
    socket_id: str | None
    received_at: float


class SandboxCall(TypedDict):
    """An HTTP API call the sandbox received: its path, status and events carried."""

    path: str
    status: int
    events: int


class SandboxListing(TypedDict):
    """The sandbox's `GET /_sandbox/events`."""

    events: list[SandboxEvent]
    calls: list[SandboxCall]
    connections: int
    held: int


@dataclass
class Stack:
    database_url: str
    sandbox_url: str
    sandbox: SandboxConfig
    #: same server, its own database: the ceiling's rows are nobody's deliveries
    bare_database_url: str
    sandbox_pid: int
    postgres_data_dir: Path

    def postgres_cpu_seconds(self) -> float:
        """CPU used so far by PostgreSQL: the postmaster and every process it started
        (backends, WAL writer, checkpointer...). Pools keep their backends for a whole run."""
        postmaster = int((self.postgres_data_dir / "postmaster.pid").read_text().split()[0])
        return sum(cpu_seconds(pid) for pid in [postmaster, *_children(postmaster)])

    def service_env(self, port: int, **extra: str) -> dict[str, str]:
        return service_environment(
            database_url=self.database_url,
            sandbox=self.sandbox,
            sandbox_port=int(self.sandbox_url.rsplit(":", 1)[1]),
            jwt_secret=JWT_SECRET,
            **{"PORT": str(port), "LOG_LEVEL": "WARNING", **extra},
        )

    async def sandbox_fault(self, session: aiohttp.ClientSession, **fault: Any) -> None:
        url = f"{self.sandbox_url}/_sandbox/faults"
        if fault:
            async with session.post(url, json=fault) as response:
                response.raise_for_status()
        else:
            async with session.delete(url) as response:
                response.raise_for_status()

    async def sandbox_reset(self, session: aiohttp.ClientSession) -> None:
        async with session.delete(f"{self.sandbox_url}/_sandbox/events") as response:
            response.raise_for_status()

    async def pusher_calls(self, session: aiohttp.ClientSession) -> int:
        """Event-carrying API calls the sandbox has received so far."""
        calls = (await self.sandbox_events(session))["calls"]
        return sum(1 for call in calls if not call["path"].endswith("/channels"))

    async def sandbox_events(self, session: aiohttp.ClientSession) -> SandboxListing:
        async with session.get(f"{self.sandbox_url}/_sandbox/events") as response:
            listing: SandboxListing = await response.json()
            return listing


async def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until `url` answers with a status below 500: the process behind it is up."""
    async with aiohttp.ClientSession() as session:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not come up")
            await asyncio.sleep(0.1)


def _start_postgres() -> LocalPostgres:
    # fsync on, as in production: the numbers include durable commits
    return LocalPostgres.started_in_temporary_folder(durable=True, prefix="msgsvc-bench-")


@asynccontextmanager
async def stack() -> AsyncIterator[Stack]:
    """PostgreSQL (fsync on, as in production) and the sandbox as its own process."""
    postgres = await asyncio.to_thread(_start_postgres)
    base = postgres.data_dir.parent
    sandbox_port = free_port()
    sandbox = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.sandbox",
        "--port",
        str(sandbox_port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        service_database = await migrated_database(postgres, "bench")
        # the bare handler's rows would be pending deliveries to the service's relay: apart
        bare_database = await migrated_database(postgres, "bench_bare")
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        await wait_http(f"{sandbox_url}/_sandbox/events")
        yield Stack(
            service_database,
            sandbox_url,
            SandboxConfig(),
            bare_database,
            sandbox.pid,
            postgres.data_dir,
        )
    finally:
        sandbox.terminate()
        await sandbox.wait()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class ServiceHandle:
    base: str
    pid: int

    def rss_mib(self) -> float:
        """Resident memory of the service process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("VmRSS not found")


@asynccontextmanager
async def service(
    stack: Stack, *, command: Sequence[str] = ("service", "serve"), **env: str
) -> AsyncIterator[ServiceHandle]:
    """`python -m service serve` (or another `command` run the same way) as a real process."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        env=stack.service_env(port, **env),
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/healthz")
        yield ServiceHandle(base, process.pid)
    finally:
        process.terminate()
        await process.wait()
