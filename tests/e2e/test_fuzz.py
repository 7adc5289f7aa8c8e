"""schemathesis fuzzes the running service from its own /openapi.json: no 5xx, no response
that breaks the document, with valid, invalid and admin tokens."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from ..conftest import Sandbox
from ..helpers import token
from ..jwks_provider import AUDIENCE, ISSUER, Provider
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "fuzz-admin-token"
#: bounded so CI stays fast; the seed makes a failure reproducible
EXAMPLES = "25"


@pytest.fixture
async def service(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection, provider: Provider
) -> AsyncIterator[ServiceProcess]:
    """HS256 tokens and the provider's both: every authentication path is fuzzed."""
    process = ServiceProcess(
        database_url,
        sandbox,
        ADMIN_TOKEN=ADMIN_TOKEN,
        LOG_LEVEL="ERROR",
        AUTH_JWKS_URL=provider.url,
        AUTH_ISSUER=ISSUER,
        AUTH_AUDIENCE=AUDIENCE,
    )
    await process.start()
    yield process
    await process.stop()


async def schemathesis(
    service: ServiceProcess, authorization: str, *extra: str, exclude: tuple[str, ...] = ()
) -> tuple[int, str]:
    binary = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(binary),
        "run",
        f"{service.base}/openapi.json",
        "-H",
        f"Authorization: {authorization}",
        "--checks",
        "all",
        # valid-looking data can still be refused for reasons a schema cannot say (sending to
        # yourself, a senderId that is not you): those are 4xx by design
        "--exclude-checks",
        ",".join(("positive_data_acceptance", *exclude)),
        "-n",
        EXAMPLES,
        "--seed",
        "20261127",
        "--workers",
        "1",
        "--no-color",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


def generated_and_passed(output: str) -> tuple[int, int]:
    match = re.search(r"(\d+) generated, (?:.*?)(\d+) passed", output)
    assert match, output[-2000:]
    return int(match.group(1)), int(match.group(2))


USERS_ONLY = ("--exclude-path-regex", "^/admin")
#: (who, the Authorization header given the provider, extra arguments, provider down)
CASES: list[tuple[str, Callable[[Provider], str], tuple[str, ...], bool]] = [
    ("user token", lambda p: f"Bearer {token(1)}", USERS_ONLY, False),
    ("provider token (RS256)", lambda p: f"Bearer {p.token(1, 'rsa-1')}", USERS_ONLY, False),
    ("provider token (ES256)", lambda p: f"Bearer {p.token(1, 'ec-1')}", USERS_ONLY, False),
    (
        "provider token of an unknown key, provider down (503 auth_unavailable)",
        lambda p: f"Bearer {p.token(1, 'rsa-1', headers={'kid': 'rsa-next'})}",
        USERS_ONLY,
        True,
    ),
    ("invalid token", lambda p: "Bearer not-a-valid-token", (), False),
    ("admin token", lambda p: f"Bearer {ADMIN_TOKEN}", ("--include-path-regex", "^/admin"), False),
]


@pytest.mark.parametrize(
    ("who", "authorization", "extra", "down"), CASES, ids=[c[0] for c in CASES]
)
async def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    service: ServiceProcess,
    provider: Provider,
    who: str,
    authorization: Callable[[Provider], str],
    extra: tuple[str, ...],
    down: bool,
) -> None:
    if down:
        provider.status = 503
    # the provider down makes every authenticated answer a 503 by design: the check that
    # refuses any 5xx is left out, the ones that hold the 503 to the document stay
    exclude = ("not_a_server_error",) if down else ()
    code, output = await schemathesis(service, authorization(provider), *extra, exclude=exclude)
    generated, passed = generated_and_passed(output)
    print(f"\nschemathesis ({who}): {generated} generated, {passed} passed")
    assert code == 0, output[-4000:]
    assert generated >= 25
    assert passed == generated
    if down:  # the fuzzing did meet the provider down, not only a cached key
        assert provider.hits >= 2
