"""Send throughput and latency under wrk, next to the bare handler (the ceiling)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from service.devtools.postgres import free_port

from .stack import Stack, _wait_http, service
from .wrk import WrkResult, run_wrk

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measured:
    """A wrk run and the CPU the measured server process spent on it."""

    wrk: WrkResult
    cpu_seconds: float

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(1, self.wrk.requests)


@asynccontextmanager
async def bare_handler(stack: Stack) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare", str(port), stack.bare_database_url,
        cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_http(f"{base}/api/messages/send")
        yield base, process.pid
    finally:
        process.terminate()
        await process.wait()


async def measure(base: str, pid: int, script: Path, connections: int, seconds: float) -> Measured:
    await run_wrk(base, script, connections=connections, seconds=1)  # warm-up
    before = cpu_seconds(pid)
    result = await run_wrk(base, script, connections=connections, seconds=seconds)
    return Measured(result, cpu_seconds(pid) - before)


async def service_vs_bare(
    stack: Stack, script: Path, connections: int, seconds: float, **env: str
) -> tuple[Measured, Measured]:
    async with service(stack, **env) as svc:
        mine = await measure(svc.base, svc.pid, script, connections, seconds)
    async with bare_handler(stack) as (base, pid):
        ceiling = await measure(base, pid, script, connections, seconds)
    return mine, ceiling


async def p99_under_slow_pusher(
    stack: Stack, script: Path, delay: float, connections: int, seconds: float, **env: str
) -> WrkResult:
    async with service(stack, **env) as svc, aiohttp.ClientSession() as control:
        if delay:
            await stack.sandbox_fault(control, kind="delay", seconds=delay)
        try:
            return (await measure(svc.base, svc.pid, script, connections, seconds)).wrk
        finally:
            await stack.sandbox_fault(control)
