"""RUNBOOK.md, executed: every code block runs against a real stack — the service as a process,
PostgreSQL, the sandbox Pusher and a real Prometheus scraping the service with the project's
rules — while an incident is induced (Pusher failing, a backlog, a dead letter, the identity
provider unreachable):

- `promql`: each line is a query sent to Prometheus' query API; it must parse, and the queries
  of the sections that diagnose this incident must return data;
- `sql`: each statement runs against the migrated database (in a transaction rolled back), and
  none reads the `content` column;
- `sh`: each `python -m service …` line runs and exits 0, 1 or 2 without a traceback; each log
  pipeline runs over the service's own log lines captured during the incident (its
  `kubectl logs …` / `docker compose logs …` source replaced by that capture) and prints lines;
- `text`: sample output, counted, not run; `sh not-runnable-here: <why>`: counted with the why.

A block with no language, or a command of a kind the test does not know, fails the test: a
runbook command nobody runs is how the upper-case level filters printed nothing.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import auth, eventually
from .processes import ServiceProcess, service_env
from .prometheus_server import running_prometheus

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "RUNBOOK.md"

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>.*)$")
HEADING = re.compile(r"^#{2,4} (?P<title>.+)$")
#: where a log pipeline reads from in production, replaced by the captured lines here
LOG_SOURCE = re.compile(r"^(kubectl logs|docker compose logs)\b[^|]*")
#: sections that diagnose the induced incident: their queries must return data now
INCIDENT_SECTIONS = {
    "PusherErrorRateHigh",
    "PusherErrorRateCritical",
    "PusherUnavailable",
    "PusherCircuitOpen",
    "MessageBacklogGrowing",
    "UndeliveredMessageOld",
    "MessageAuthKeysStale",
}
#: a query of an incident section that needs longer history than the test has, and why
NEEDS_HISTORY = {
    'deriv(max(messages_undelivered{job="message-send-service"})[10m:1m])': (
        "a subquery at one-minute resolution: no two points within a test's seconds"
    ),
}


@dataclass
class Block:
    language: str
    not_runnable: str | None  # the reason, for `sh not-runnable-here: <why>`
    text: str
    line: int
    section: str


def runbook_blocks(path: Path = RUNBOOK) -> list[Block]:
    blocks: list[Block] = []
    section, inside, lines, start, info = "", False, list[str](), 0, ""
    indent = ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if not inside and (heading := HEADING.match(line)):
            section = heading["title"].strip()
        elif fence and not inside:
            inside, lines, start = True, [], number
            info, indent = fence["info"].strip(), fence["indent"]
        elif fence and inside:
            inside = False
            language, _, rest = info.partition(" ")
            reason = rest.removeprefix("not-runnable-here:").strip() if rest else None
            assert not rest or rest.startswith("not-runnable-here:"), f"line {start}: {info!r}"
            blocks.append(Block(language, reason, "\n".join(lines), start, section))
        elif inside:
            lines.append(line.removeprefix(indent))
    assert not inside, "an unclosed code block"
    return blocks


def promql_queries(block: Block) -> list[str]:
    return [q.strip() for q in block.text.splitlines() if q.strip() and not q.startswith("#")]


def sql_statements(block: Block) -> list[str]:
    text = "\n".join(line.split("--")[0] for line in block.text.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def sh_commands(block: Block) -> list[str]:
    """Lines with their continuations joined, comments dropped."""
    joined = block.text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        commands.append(re.sub(r"\s+#[^'\"]*$", "", line).strip())
    return commands


def reads_content(statement: str) -> bool:
    lowered = statement.lower()
    return bool(re.search(r"\bcontent\b", lowered) or re.search(r"select\s+\*", lowered))


# -- the stack -----------------------------------------------------------------------------


@pytest.fixture
async def service(database_url: str, sandbox: Sandbox) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(
        database_url,
        sandbox,
        PUSHER_PROBE_SECONDS="1",
        RELAY_POLL_SECONDS="0.2",
        DELIVERY_RETRY_BASE_SECONDS="0.5",
        DELIVERY_RETRY_CAP_SECONDS="1",
        CIRCUIT_COOLDOWN_SECONDS="1",
        # the identity provider is unreachable all along (nothing listens on port 1): the
        # HS256 tokens of the incident still work, the JWKS fetches fail and are logged
        AUTH_JWKS_URL="http://127.0.0.1:1/realms/chat/protocol/openid-connect/certs",
        AUTH_ISSUER="https://idp.test/realms/chat",
        AUTH_AUDIENCE="chat-api",
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
    )
    await process.start()
    yield process
    await process.stop()


class LogCapture:
    """The service's log lines as they come: read all along, since a pipe nobody reads fills
    (64 KiB) and then stalls the service at its next log line."""

    def __init__(self, service: ServiceProcess) -> None:
        assert service.process is not None and service.process.stderr is not None
        self._stream = service.process.stderr
        self.lines: list[str] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stream.readline():
            self.lines.append(line.decode())

    async def finish(self) -> str:
        await self._task  # the service has exited: the stream ends
        return "".join(self.lines)


@pytest.fixture
async def prometheus(tmp_path: Path, service: ServiceProcess) -> AsyncIterator[str]:
    job = {
        "job_name": "message-send-service",
        "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}],
    }
    async with running_prometheus(tmp_path, [job]) as url:
        yield url


async def _induce_incident(
    session: aiohttp.ClientSession,
    service: ServiceProcess,
    sandbox: Sandbox,
    db: asyncpg.Connection,
) -> None:
    """A Pusher outage with sends going on (failed calls, an open circuit, a backlog), after
    one call rejected outright (a dead letter)."""
    for n in range(5):
        await service.send(session, 1, 2, f"before {n}")
    await eventually(lambda: len(sandbox.state.events) >= 5)
    # alone in its call (a rejected batch is split and retried): this one is dead-lettered
    sandbox.state.faults.set(Fault(kind="status", status=400, calls=1))
    await service.send(session, 1, 2, "rejected")
    dead = "SELECT count(*) FROM messages WHERE dead_lettered_at IS NOT NULL"
    for _ in range(100):
        if await db.fetchval(dead):
            break
        await asyncio.sleep(0.1)
    assert await db.fetchval(dead) == 1, "the rejected message was not dead-lettered"
    sandbox.state.faults.set(Fault(kind="status", status=503))
    for n in range(30):
        message = await service.send(session, 3, 4, f"during {n}")
        # what the client does while Pusher is away: it polls the conversation's history
        history = f"{service.base}/api/conversations/{message['conversationId']}/messages"
        async with session.get(history, headers=auth(4)) as response:
            assert response.status == 200
        await asyncio.sleep(0.1)


async def _query(session: aiohttp.ClientSession, base: str, promql: str) -> list[object]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as response:
        body = await response.json()
    assert body["status"] == "success", f"{promql}: {body.get('error')}"
    result: list[object] = body["data"]["result"]
    return result


async def _run(command: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-o",
        "pipefail",
        "-c",
        command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_every_runbook_block_runs(
    database_url: str,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    service: ServiceProcess,
    prometheus: str,
) -> None:
    blocks = runbook_blocks()
    known = {"promql", "sql", "sh", "text"}
    untagged = [(b.line, b.language) for b in blocks if b.language not in known]
    assert not untagged, f"code blocks without a known language tag: {untagged}"
    ran: Counter[str] = Counter()
    not_runnable: list[str] = []

    logs = LogCapture(service)
    async with aiohttp.ClientSession() as session:
        await _induce_incident(session, service, sandbox, db)
        # Prometheus has scraped the outage for a while: rates need two samples
        for _ in range(60):
            if await _query(session, prometheus, "messages_pusher_circuit_open == 1"):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)

        empty: list[str] = []
        for block in (b for b in blocks if b.language == "promql"):
            for promql in promql_queries(block):
                result = await _query(session, prometheus, promql)
                ran["promql"] += 1
                if block.section in INCIDENT_SECTIONS and not result:
                    if promql in NEEDS_HISTORY:
                        not_runnable.append(f"promql (parsed, no data): {NEEDS_HISTORY[promql]}")
                    else:
                        empty.append(f"{block.section} (line {block.line}): {promql}")
        assert not empty, "incident queries that found nothing during the incident:\n" + "\n".join(
            empty
        )

    for block in (b for b in blocks if b.language == "sql"):
        for statement in sql_statements(block):
            assert not reads_content(statement), f"line {block.line} reads content: {statement}"
            transaction = db.transaction()
            await transaction.start()
            try:
                await db.fetch(statement)
            finally:
                await transaction.rollback()
            ran["sql"] += 1

    env = service_env(database_url, sandbox)
    commands = [
        (block, command)
        for block in blocks
        if block.language == "sh"
        for command in sh_commands(block)
    ]
    unknown = [
        (b.line, c)
        for b, c in commands
        if b.not_runnable is None and not (c.startswith("python -m service") or LOG_SOURCE.match(c))
    ]
    assert not unknown, f"commands the test cannot run, not marked not-runnable-here: {unknown}"
    for block, command in commands:
        if block.not_runnable is not None or not command.startswith("python -m service"):
            continue
        status, out, err = await _run(command.replace("python", sys.executable, 1), env)
        assert status in (0, 1, 2) and "Traceback" not in err, (command, status, err)
        ran["python -m service"] += 1
    await asyncio.sleep(2.5)  # the mode changes reach the service and its log

    await service.stop()
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as capture:
        capture.write(await logs.finish())
    silent: list[str] = []
    for block, command in commands:
        if block.not_runnable is not None:
            not_runnable.append(f"sh (line {block.line}): {block.not_runnable}")
            continue
        if command.startswith("python -m service"):
            continue
        pipeline = LOG_SOURCE.sub(f"cat {capture.name} ", command, count=1)
        status, out, err = await _run(pipeline, env)
        assert status == 0 or out, (command, status, err)
        if not out.strip():
            silent.append(f"line {block.line}: {command}")
        ran["log pipeline"] += 1
    assert not silent, "log pipelines that found nothing in the incident's logs:\n" + "\n".join(
        silent
    )
    # the runbook's commands flipped the rollback flag: leave the database as tests expect it
    await db.execute("DELETE FROM delivery_mode_override")
    ran["text (not run)"] = sum(1 for b in blocks if b.language == "text")
    print(f"\nRUNBOOK.md: {len(blocks)} blocks; ran {dict(ran)}")
    for reason in not_runnable:
        print(f"  not run here: {reason}")
