"""Send throughput and latency under wrk, next to the bare handler (the ceiling)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from service.devtools.postgres import free_port

from .stack import Stack, _wait_http, service
from .wrk import WrkResult, run_wrk

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def bare_handler(stack: Stack) -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare", str(port), stack.database_url,
        cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_http(f"{base}/api/messages/send")
        yield base
    finally:
        process.terminate()
        await process.wait()


async def measure(base: str, script: Path, connections: int, seconds: float) -> WrkResult:
    await run_wrk(base, script, connections=connections, seconds=1)  # warm-up
    return await run_wrk(base, script, connections=connections, seconds=seconds)


async def service_vs_bare(
    stack: Stack, script: Path, connections: int, seconds: float, **env: str
) -> tuple[WrkResult, WrkResult]:
    async with service(stack, **env) as svc:
        mine = await measure(svc.base, script, connections, seconds)
    async with bare_handler(stack) as base:
        ceiling = await measure(base, script, connections, seconds)
    return mine, ceiling


async def p99_under_slow_pusher(
    stack: Stack, script: Path, delay: float, connections: int, seconds: float
) -> WrkResult:
    async with service(stack) as svc, aiohttp.ClientSession() as control:
        if delay:
            await stack.sandbox_fault(control, kind="delay", seconds=delay)
        try:
            return await measure(svc.base, script, connections, seconds)
        finally:
            await stack.sandbox_fault(control)
