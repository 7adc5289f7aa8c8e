"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import jwt
from aiohttp import web
from aiohttp.test_utils import TestClient

JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"

#: the app under test, as the `client` fixture and `make_client(...)` give it
AppClient: TypeAlias = TestClient[web.Request, web.Application]
#: the `make_client` fixture: keyword overrides of the test settings -> a client
MakeClient: TypeAlias = Callable[..., Awaitable[AppClient]]
#: /metrics parsed: {(sample name, sorted labels): value}
Samples: TypeAlias = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def token(user_id: int | str, secret: str = JWT_SECRET, **claims: Any) -> str:
    return jwt.encode({"sub": str(user_id), **claims}, secret, algorithm="HS256")


def auth(user_id: int | str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user_id, **claims)}"}


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def assert_error(body: dict[str, Any], code: str) -> None:
    """The contract's error shape, with the expected machine code."""
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def run_cli(database_url: str, *args: str) -> str:
    """`python -m service ARGS` with only DATABASE_URL set, as on-call runs it; its stdout."""
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, (
        f"python -m service {' '.join(args)} exited {process.returncode}"
    )
    return output.decode()


def required_tool(name: str, package: str) -> str:
    """The path of a command-line tool the test needs: a failure in CI (its install step
    must provide it), a skip on a developer machine without it."""
    import os
    import shutil

    import pytest

    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{name} is missing in CI: make test installs it (apt-get install {package})"
            )
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return found


async def scrape(client: AppClient) -> Samples:
    """GET /metrics, parsed by prometheus-client's own parser: {(sample, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    response = await client.get("/metrics")
    assert response.status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]
