"""schemathesis fuzzes the running service from its own /openapi.json: no 5xx, no response
that breaks the document, with valid, invalid and admin tokens."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ..conftest import Sandbox
from ..helpers import token
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "fuzz-admin-token"
#: bounded so CI stays fast; the seed makes a failure reproducible
EXAMPLES = "25"


@pytest.fixture
async def service(
    database_url: str, sandbox: Sandbox, db: asyncpg.Connection
) -> AsyncIterator[ServiceProcess]:
    process = ServiceProcess(database_url, sandbox, ADMIN_TOKEN=ADMIN_TOKEN, LOG_LEVEL="ERROR")
    await process.start()
    yield process
    await process.stop()


async def schemathesis(service: ServiceProcess, authorization: str, *extra: str) -> tuple[int, str]:
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
        "positive_data_acceptance",
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


@pytest.mark.parametrize(
    ("who", "authorization", "extra"),
    [
        ("user token", f"Bearer {token(1)}", ("--exclude-path-regex", "^/admin")),
        ("invalid token", "Bearer not-a-valid-token", ()),
        ("admin token", f"Bearer {ADMIN_TOKEN}", ("--include-path-regex", "^/admin")),
    ],
)
async def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    service: ServiceProcess, who: str, authorization: str, extra: tuple[str, ...]
) -> None:
    code, output = await schemathesis(service, authorization, *extra)
    generated, passed = generated_and_passed(output)
    print(f"\nschemathesis ({who}): {generated} generated, {passed} passed")
    assert code == 0, output[-4000:]
    assert generated >= 25
    assert passed == generated
