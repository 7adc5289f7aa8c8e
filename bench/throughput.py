"""Send throughput and latency under wrk, next to the bare handler (the ceiling), with the CPU
every process on the machine spent per request."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from service.devtools.postgres import free_port

from .otlp_sink import OtlpSink
from .stack import Stack, cpu_seconds, service, wait_http
from .wrk import WrkResult, run_wrk

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measured:
    """A wrk run and the CPU seconds each process spent on it."""

    wrk: WrkResult
    server_cpu: float
    postgres_cpu: float
    sandbox_cpu: float
    #: event-carrying calls the sandbox Pusher received during the run
    pusher_calls: int

    def _per_request(self, seconds: float) -> float:
        return 1000 * seconds / max(1, self.wrk.requests)

    @property
    def cpu_ms_per_request(self) -> float:
        return self._per_request(self.server_cpu)

    @property
    def postgres_ms_per_request(self) -> float:
        return self._per_request(self.postgres_cpu)

    @property
    def sandbox_ms_per_request(self) -> float:
        return self._per_request(self.sandbox_cpu)

    @property
    def calls_per_request(self) -> float:
        return self.pusher_calls / max(1, self.wrk.requests)


@asynccontextmanager
async def bare_handler(stack: Stack) -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare", str(port), stack.bare_database_url, cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/api/messages/send")
        yield base, process.pid
    finally:
        process.terminate()
        await process.wait()


async def measure(
    stack: Stack, base: str, pid: int, script: Path, connections: int, seconds: float
) -> Measured:
    await run_wrk(base, script, connections=connections, seconds=1)  # warm-up
    async with aiohttp.ClientSession() as control:
        calls_before = await stack.pusher_calls(control)
        before = (cpu_seconds(pid), stack.postgres_cpu_seconds(), cpu_seconds(stack.sandbox_pid))
        result = await run_wrk(base, script, connections=connections, seconds=seconds)
        after = (cpu_seconds(pid), stack.postgres_cpu_seconds(), cpu_seconds(stack.sandbox_pid))
        await asyncio.sleep(0.2)  # the last batches of the run reach the sandbox
        calls = await stack.pusher_calls(control) - calls_before
    server, postgres, sandbox = (b - a for a, b in zip(before, after, strict=True))
    return Measured(result, server, postgres, sandbox, calls)


async def service_vs_bare(
    stack: Stack, script: Path, connections: int, seconds: float, *, bare_first: bool = False
) -> tuple[Measured, Measured]:
    """The service and the ceiling one after the other; alternate `bare_first` between runs so
    that a host drifting in speed does not favour either side."""

    async def mine() -> Measured:
        async with service(stack) as svc:
            return await measure(stack, svc.base, svc.pid, script, connections, seconds)

    async def ceiling() -> Measured:
        async with bare_handler(stack) as (base, pid):
            return await measure(stack, base, pid, script, connections, seconds)

    if bare_first:
        bare = await ceiling()
        return await mine(), bare
    measured = await mine()
    return measured, await ceiling()


async def under_pusher_delay(
    stack: Stack, script: Path, delay: float, connections: int, seconds: float, **env: str
) -> Measured:
    async with service(stack, **env) as svc, aiohttp.ClientSession() as control:
        if delay:
            await stack.sandbox_fault(control, kind="delay", seconds=delay)
        try:
            return await measure(stack, svc.base, svc.pid, script, connections, seconds)
        finally:
            await stack.sandbox_fault(control)


async def traced(
    stack: Stack, script: Path, ratio: float, connections: int, seconds: float
) -> tuple[Measured, float]:
    """Throughput with OpenTelemetry exporting over OTLP/HTTP to a local collector, sampling
    `ratio` of the traces; also the spans the collector received per request."""
    async with OtlpSink() as sink:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        }
        measured = await under_pusher_delay(stack, script, 0.0, connections, seconds, **env)
        # the service flushed its last spans at shutdown; count what arrived
        spans = sink.spans()
    return measured, spans / max(1, measured.wrk.requests)
