"""Send throughput and latency under wrk, next to the bare handler (the ceiling) and the design
document's system as written, with the CPU every process on the machine spent per request."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from service.devtools.postgres import free_port

from .document_system import document_system
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
    #: events it accepted (answered 200) in them
    pusher_events: int = 0
    #: seconds from the end of wrk until the server and the sandbox were idle again
    tail: float = 0.0
    #: the document's system: `Pusher trigger failed` lines it logged during the run
    trigger_failures: int = 0

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

    @property
    def events_per_request(self) -> float:
        return self.pusher_events / max(1, self.wrk.requests)


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


async def settle(pids: list[int], *, timeout: float = 15.0) -> float:
    """Wait until the processes are idle (under 5 % of a core each, on average, over 0.25 s):
    the work a run started, such as Pusher calls still in flight, is done. Returns the wait."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < timeout:
        before = sum(cpu_seconds(pid) for pid in pids)
        await asyncio.sleep(0.25)
        if sum(cpu_seconds(pid) for pid in pids) - before <= 0.0125 * len(pids):
            break
    return loop.time() - started


async def measure(
    stack: Stack,
    base: str,
    pid: int,
    script: Path,
    connections: int,
    seconds: float,
    *,
    reset_sandbox: bool = False,
) -> Measured:
    """A warm-up, then `seconds` of wrk. The CPU counted runs on until the server and the
    sandbox are idle again: deliveries a run started are paid for by that run. `reset_sandbox`
    empties the sandbox's lists first (which keeps its memory, and so its garbage collector's
    work, the same for every run) but also clears its faults: only for a healthy Pusher."""
    await run_wrk(base, script, connections=connections, seconds=1)  # warm-up
    async with aiohttp.ClientSession() as control:
        await settle([pid, stack.sandbox_pid])
        if reset_sandbox:
            await stack.sandbox_reset(control)
        seen = len((await stack.sandbox_events(control))["calls"])
        before = (cpu_seconds(pid), stack.postgres_cpu_seconds(), cpu_seconds(stack.sandbox_pid))
        result = await run_wrk(base, script, connections=connections, seconds=seconds)
        tail = await settle([pid, stack.sandbox_pid])
        after = (cpu_seconds(pid), stack.postgres_cpu_seconds(), cpu_seconds(stack.sandbox_pid))
        listing = await stack.sandbox_events(control)
    calls = [call for call in listing["calls"][seen:] if not call["path"].endswith("/channels")]
    accepted = sum(call["events"] for call in calls if call["status"] == 200)
    server, postgres, sandbox = (b - a for a, b in zip(before, after, strict=True))
    return Measured(result, server, postgres, sandbox, len(calls), accepted, tail)


@dataclass(frozen=True)
class SideBySide:
    """One run of each system at one connection count."""

    service: Measured
    bare: Measured
    document: Measured


SYSTEMS = ("service", "bare", "document")


def order(run: int) -> tuple[str, ...]:
    """The order of the systems in run `run`: it rotates, so that over three runs each system
    takes each place once and a host drifting in speed favours none."""
    shift = run % len(SYSTEMS)
    return SYSTEMS[shift:] + SYSTEMS[:shift]


async def side_by_side(
    stack: Stack, script: Path, connections: int, seconds: float, *, run: int = 0
) -> SideBySide:
    """The service, the ceiling and the design document's system one after the other, in the
    order `order(run)` gives, each a fresh process on the same PostgreSQL and sandbox."""

    def run_on(base: str, pid: int) -> Awaitable[Measured]:
        return measure(stack, base, pid, script, connections, seconds, reset_sandbox=True)

    async def one(system: str) -> Measured:
        if system == "service":
            async with service(stack) as svc:
                return await run_on(svc.base, svc.pid)
        if system == "bare":
            async with bare_handler(stack) as (base, pid):
                return await run_on(base, pid)
        async with document_system(stack) as doc:
            failed = doc.trigger_failures()
            measured = await run_on(doc.base, doc.pid)
            return replace(measured, trigger_failures=doc.trigger_failures() - failed)

    measured = {system: await one(system) for system in order(run)}
    return SideBySide(
        service=measured["service"], bare=measured["bare"], document=measured["document"]
    )


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


@dataclass(frozen=True)
class Variant:
    """One row of the slow-Pusher table: Pusher's delay, the event loop, trace sampling."""

    slow_pusher: bool = False
    loop: str = "uvloop"
    #: fraction of traces sampled and exported over OTLP; None: tracing off
    tracing: float | None = None

    def label(self, delay: float) -> str:
        traces = "tracing off" if self.tracing is None else f"{self.tracing:.0%} traced"
        return f"a {delay:.0f} s Pusher, {self.loop}, {traces}"

    async def measure(
        self, stack: Stack, script: Path, delay: float, seconds: float, connections: int = 50
    ) -> tuple[Measured, float | None]:
        """One run; with tracing on, also the spans exported per request."""
        if self.tracing is None:
            work = under_pusher_delay(
                stack, script, delay, connections, seconds, EVENT_LOOP=self.loop
            )
            return await work, None
        return await traced(stack, script, self.tracing, connections, seconds)


VARIANTS = (
    Variant(),
    Variant(slow_pusher=True),
    Variant(loop="asyncio"),
    Variant(tracing=0.1),
    Variant(tracing=1.0),
)
