"""`python -m service doctor` as on-call runs it, against a real PostgreSQL and the sandbox:
healthy, PostgreSQL stopped, a wrong Pusher secret, and a backlog with its companions (an old
pending message, a dead letter, a lapsed claim, the rollback flag on). Each line is OK / WARN /
FAIL with the RUNBOOK section to read; the exit status is the worst; no secret, no content."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import AsyncIterator, Mapping

import asyncpg
import pytest

from service.devtools.postgres import LocalPostgres

from ..conftest import Sandbox, create_database, new_postgres, remove_postgres
from ..e2e.processes import service_env
from ..jwks_provider import AUDIENCE, ISSUER, Provider

CHECKS = [
    "configuration",
    "pusher",
    "identity provider",
    "postgresql",
    "migrations",
    "delivery mode",
    "pending deliveries",
    "dead letters",
    "lapsed claims",
]
LINE = re.compile(r"(OK|WARN|FAIL) +(\S+(?: \S+)?) +(.*?)(?:  -> RUNBOOK: (.+))?$")
CONTENT = "a private message body"


async def doctor(env: Mapping[str, str]) -> tuple[int, dict[str, tuple[str, str, str]]]:
    """Exit status, and check -> (status, detail, RUNBOOK section) from its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "doctor",
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    text = out.decode()
    print(f"$ python -m service doctor  (exit {process.returncode})\n{text}")
    for secret in (env["PUSHER_SECRET"], env["AUTH_JWT_SECRET"], CONTENT):
        assert secret not in text + err.decode()
    found: dict[str, tuple[str, str, str]] = {}
    for line in text.splitlines():
        match = LINE.fullmatch(line)
        assert match, f"not a check line: {line!r}"
        found[match[2]] = (match[1], match[3], match[4] or "")
    assert process.returncode is not None
    return process.returncode, found


def runbook_sections() -> set[str]:
    with open("RUNBOOK.md") as runbook:
        return {line.lstrip("#").strip() for line in runbook if line.startswith("#")}


@pytest.fixture
async def own_database(postgres: LocalPostgres) -> AsyncIterator[str]:
    yield await create_database(postgres, f"doctor_{uuid.uuid4().hex[:8]}")


async def test_a_healthy_stack_is_all_ok(own_database: str, sandbox: Sandbox) -> None:
    status, found = await doctor(service_env(own_database, sandbox))
    assert list(found) == CHECKS
    assert {check: s for check, (s, _, _) in found.items()} == dict.fromkeys(CHECKS, "OK")
    assert status == 0
    assert "all 5 applied" in found["migrations"][1]
    assert "credentials accepted" in found["pusher"][1]


async def test_the_identity_provider_is_checked_when_configured(
    own_database: str, sandbox: Sandbox, provider: Provider
) -> None:
    env = service_env(
        own_database,
        sandbox,
        AUTH_JWKS_URL=provider.url,
        AUTH_ISSUER=ISSUER,
        AUTH_AUDIENCE=AUDIENCE,
    )
    status, found = await doctor(env)
    assert status == 0
    assert found["identity provider"][:2] == ("OK", f"JWKS answers: 2 signing key(s) ({ISSUER})")
    provider.status = 503  # down: a warning (replicas keep the keys they hold), not a failure
    status, found = await doctor(env)
    assert status == 1
    assert found["identity provider"] == (
        "WARN",
        "JWKS fetch failed: HTTP 503",
        "MessageAuthKeysStale",
    )
    assert "MessageAuthKeysStale" in runbook_sections()
    assert provider.hits == 2


async def test_postgresql_stopped_fails(sandbox: Sandbox) -> None:
    server = new_postgres()
    url = await create_database(server, "doctor_stopped")
    await asyncio.to_thread(server.stop)
    try:
        status, found = await doctor(service_env(url, sandbox))
    finally:
        await asyncio.to_thread(remove_postgres, server)
    assert status == 2
    assert found["postgresql"][0] == "FAIL" and "does not answer" in found["postgresql"][1]
    assert found["postgresql"][2] in runbook_sections()
    assert found["pusher"][0] == "OK"  # what still works is still said


async def test_a_wrong_pusher_secret_fails(own_database: str, sandbox: Sandbox) -> None:
    env = service_env(own_database, sandbox, PUSHER_SECRET="not-the-secret")
    status, found = await doctor(env)
    assert status == 2
    state, detail, section = found["pusher"]
    assert state == "FAIL" and "credentials refused" in detail, detail
    assert section in runbook_sections()
    assert found["postgresql"][0] == "OK"


async def test_a_backlog_and_its_companions_warn(own_database: str, sandbox: Sandbox) -> None:
    db = await asyncpg.connect(own_database)
    try:
        conversation = await db.fetchval(
            "INSERT INTO conversations (user_low, user_high, last_seq) VALUES (1, 2, 3)"
            " RETURNING id"
        )
        for seq in (1, 2, 3):  # five minutes old, pending
            await db.execute(
                "INSERT INTO messages (conversation_id, seq, sender_id, recipient_id, content,"
                " created_at) VALUES ($1, $2, 1, 2, $3, now() - interval '5 minutes')",
                conversation,
                seq,
                CONTENT,
            )
        lapsed = "replica-gone"  # it claimed seq 2, then stopped renewing
        await db.execute(
            "UPDATE messages SET claimed_by = $1, claimed_until = now() - interval '1 minute'"
            " WHERE seq = 2",
            lapsed,
        )
        await db.execute(
            "UPDATE messages SET dead_lettered_at = now(), dead_letter_reason = 'test'"
            " WHERE seq = 3"
        )
        await db.execute(
            "INSERT INTO delivery_mode_override (mode, changed_by) VALUES ('sync', 'test')"
        )
    finally:
        await db.close()
    status, found = await doctor(service_env(own_database, sandbox))
    assert status == 1
    sections = runbook_sections()
    for check, words in {
        "pending deliveries": "2 pending",
        "dead letters": "1 in the last hour",
        "lapsed claims": f"{lapsed} (1)",
        "delivery mode": "sync, an override set by test",
    }.items():
        state, detail, section = found[check]
        assert state == "WARN" and words in detail, (check, detail)
        assert section in sections, section
    assert found["postgresql"][0] == found["pusher"][0] == "OK"
