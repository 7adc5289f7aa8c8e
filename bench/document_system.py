"""The design document's system as written, as a third process to measure: bench/document/
(Node.js, Express, `pg`, the official `pusher` package; the trigger fired and not awaited).
Also the outage figure: how many stored messages' events never reach Pusher when it fails
for a while, for the service and for the document's system."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from service.devtools.databases import migrated_database
from service.devtools.postgres import LocalPostgres, free_port

from .load import bearer
from .stack import Stack, service, wait_http

DOCUMENT = Path(__file__).resolve().parent / "document"
#: what `make bench` (and `npm_ci` below) touch once `npm ci` has installed the lock file
INSTALLED = DOCUMENT / "node_modules" / ".installed"
#: its own database on the stack's server: its rows are nobody else's (the service's relay
#: would otherwise see them), and `delivered_at` is set on insert besides
DATABASE = "bench_document"
#: what the document's handler logs for a failed trigger, its only trace of a lost event
FAILURE_LINE = "Pusher trigger failed:"


def npm_ci() -> None:
    """Install bench/document's locked dependencies unless `make bench` already did."""
    sources = [DOCUMENT / "package.json", DOCUMENT / "package-lock.json"]
    if INSTALLED.exists() and all(INSTALLED.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the document's system runs on Node.js")
    command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(command, cwd=DOCUMENT, check=True)
    INSTALLED.touch()


async def document_database(stack: Stack) -> str:
    """The migrated `bench_document` database on the stack's PostgreSQL (made on first use)."""
    port = urlsplit(stack.database_url).port
    assert port is not None  # the stack's URLs always name the port
    server = LocalPostgres(stack.postgres_data_dir, port)
    return await migrated_database(server, DATABASE, exist_ok=True)


@dataclass(frozen=True)
class DocumentSystem:
    base: str
    pid: int
    database_url: str
    log: Path

    def trigger_failures(self) -> int:
        """How many `Pusher trigger failed:` lines the handler has logged so far."""
        return self.log.read_text(errors="replace").count(FAILURE_LINE)


@asynccontextmanager
async def document_system(stack: Stack) -> AsyncIterator[DocumentSystem]:
    """`node bench/document/server.js` against the stack's PostgreSQL and sandbox."""
    await asyncio.to_thread(npm_ci)
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: the document's system runs on Node.js")
    database = await document_database(stack)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="msgsvc-document-"))
    log = folder / "stderr.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node,
            "server.js",
            cwd=DOCUMENT,
            env=stack.service_env(port, DATABASE_URL=database, NODE_ENV="production"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_http(f"{base}/api/messages/send")  # a GET: 404 once it listens
        yield DocumentSystem(base, process.pid, database, log)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class OutageRun:
    """Sends at a steady rate while the sandbox answers every call 503 for a while."""

    system: str
    #: sends answered 200, and the others
    sent: int
    errors: int
    #: rows in the system's database, and how many of them Pusher accepted an event for
    stored: int
    delivered: int
    #: how long after Pusher healed the last stored message was delivered; None: some never
    seconds_after_heal: float | None
    #: how long this run waited for deliveries after its last send
    waited: float
    #: the document's system only: the `Pusher trigger failed:` lines it logged
    trigger_failures: int | None

    @property
    def lost(self) -> int:
        return self.stored - self.delivered


@dataclass(frozen=True)
class Outage:
    rate: float
    seconds: float
    outage_from: float
    outage_for: float


async def _send_steadily(base: str, outage: Outage, users: int = 50) -> tuple[int, int]:
    """`rate` sends a second for `seconds`, each on its own; returns (answered 200, others)."""
    headers = [bearer(u) for u in range(1, users + 1)]
    ok = errors = 0

    async def send(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal ok, errors
        sender = n % users
        body = {"recipientId": (sender + 1) % users + 1, "content": f"outage message {n}"}
        try:
            async with session.post(
                f"{base}/api/messages/send", json=body, headers={"Authorization": headers[sender]}
            ) as response:
                await response.read()
                ok, errors = (ok + 1, errors) if response.status == 200 else (ok, errors + 1)
        except aiohttp.ClientError:
            errors += 1

    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        started, tasks = loop.time(), []
        for n in range(round(outage.rate * outage.seconds)):
            await asyncio.sleep(max(0.0, started + n / outage.rate - loop.time()))
            tasks.append(asyncio.create_task(send(session, n)))
        await asyncio.gather(*tasks)
    return ok, errors


async def _accepted_ids(stack: Stack, session: aiohttp.ClientSession) -> dict[int, float]:
    """Message id → when the sandbox first accepted an event carrying it."""
    accepted: dict[int, float] = {}
    for event in (await stack.sandbox_events(session))["events"]:
        if event["name"] == "new-message":
            accepted.setdefault(int(json.loads(event["data"])["id"]), event["received_at"])
    return accepted


async def _stored_ids(database_url: str, after: int = 0) -> set[int]:
    """The ids of the messages stored in the database, past `after`."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM messages WHERE id > $1", after)
        return {row["id"] for row in rows}
    finally:
        await connection.close()


async def _outage_run(
    stack: Stack,
    system: str,
    base: str,
    database_url: str,
    outage: Outage,
    wait: float,
    failures: Callable[[], int] | None = None,
) -> OutageRun:
    async with aiohttp.ClientSession() as control:
        await stack.sandbox_reset(control)
        earlier = max(await _stored_ids(database_url), default=0)

        async def fault() -> float:
            await asyncio.sleep(outage.outage_from)
            await stack.sandbox_fault(control, kind="status", status=503)
            await asyncio.sleep(outage.outage_for)
            await stack.sandbox_fault(control)
            return time.time()

        faulting = asyncio.create_task(fault())
        sent, errors = await _send_steadily(base, outage)
        healed = await faulting
        stored = await _stored_ids(database_url, earlier)
        finished = time.monotonic()
        while True:  # until every stored message was delivered, or `wait` is up
            accepted = await _accepted_ids(stack, control)
            if stored <= accepted.keys() or time.monotonic() - finished > wait:
                break
            await asyncio.sleep(0.5)
    delivered = stored & accepted.keys()
    last = max((accepted[i] for i in delivered), default=healed)
    return OutageRun(
        system=system,
        sent=sent,
        errors=errors,
        stored=len(stored),
        delivered=len(delivered),
        seconds_after_heal=max(0.0, last - healed) if delivered == stored else None,
        waited=time.monotonic() - finished,
        trigger_failures=failures() if failures else None,
    )


async def outage_loss(
    stack: Stack, outage: Outage, *, service_wait: float = 60.0, document_wait: float = 10.0
) -> tuple[OutageRun, OutageRun]:
    """The same outage, the service then the document's system, on one stack (their own
    databases; the sandbox reset in between). The service is waited for until its relay has
    delivered everything (at most `service_wait` s); the document's system keeps nothing to
    retry from, so it gets `document_wait` s for triggers still in flight."""
    async with service(stack) as svc:
        mine = await _outage_run(
            stack, "service", svc.base, stack.database_url, outage, service_wait
        )
    async with document_system(stack) as doc:
        theirs = await _outage_run(
            stack,
            "document",
            doc.base,
            doc.database_url,
            outage,
            document_wait,
            doc.trigger_failures,
        )
    return mine, theirs
