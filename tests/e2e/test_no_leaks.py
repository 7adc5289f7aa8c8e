"""A full run of a real service process, with every secret set: none of them, and no message
content, ever shows in its logs, its error responses or /metrics."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import asyncpg
import pytest
from pytest_aiohttp import AiohttpServer

from service.sandbox import Fault

from ..conftest import Sandbox
from ..helpers import JWT_SECRET, auth, eventually, token
from ..jwks_provider import AUDIENCE, ISSUER, Provider
from .processes import ServiceProcess

pytestmark = pytest.mark.e2e
ADMIN_TOKEN = "admin-token-that-must-not-leak"
DB_PASSWORD = "db-password-that-must-not-leak"
SENTRY_KEY = "sentrykeythatmustnotleak"
CONTENT = "content that must never be logged"


async def test_a_full_run_leaks_no_secret_and_no_content(
    database_url: str,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    aiohttp_server: AiohttpServer,
    provider: Provider,
) -> None:
    from aiohttp import web

    async def swallow(request: web.Request) -> web.Response:  # a Sentry that accepts anything
        await request.read()
        return web.json_response({})

    inbox = web.Application()
    inbox.router.add_post("/api/{project}/envelope/", swallow)
    sentry = await aiohttp_server(inbox)
    provider_token = provider.token(1, "rsa-1")
    unknown_key_token = provider.token(1, "rsa-1", headers={"kid": "rsa-next"})
    url_with_password = database_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    service = ServiceProcess(
        url_with_password,
        sandbox,
        ADMIN_TOKEN=ADMIN_TOKEN,
        LOG_LEVEL="DEBUG",
        SENTRY_DSN=f"http://{SENTRY_KEY}@127.0.0.1:{sentry.port}/1",
        DELIVERY_RETRY_BASE_SECONDS="0.05",
        RELAY_POLL_SECONDS="0.1",
        AUTH_JWKS_URL=provider.url,
        AUTH_ISSUER=ISSUER,
        AUTH_AUDIENCE=AUDIENCE,
    )
    await service.start()
    seen: list[tuple[str, str]] = []  # (path, body) of every response
    try:
        async with aiohttp.ClientSession() as session:

            async def call(method: str, path: str, **kwargs: Any) -> None:
                async with session.request(method, f"{service.base}{path}", **kwargs) as response:
                    seen.append((f"{response.status} {path}", await response.text()))

            sandbox.state.faults.set(Fault("status", status=500, calls=1))  # a retry
            await call(
                "POST",
                "/api/messages/send",
                json={"recipientId": 2, "content": f"{CONTENT} 1"},
                headers=auth(1),
            )
            await eventually(lambda: len(sandbox.state.events) == 1)
            sandbox.state.faults.set(Fault("status", status=413, calls=1))  # a dead letter
            await call(
                "POST",
                "/api/messages/send",
                json={"recipientId": 2, "content": CONTENT},
                headers=auth(1),
            )
            for _ in range(100):
                if await db.fetchval(
                    "SELECT count(*) FROM messages WHERE dead_lettered_at IS NOT NULL"
                ):
                    break
                await asyncio.sleep(0.05)
            await call(
                "POST",
                "/api/messages/send",
                json={"recipientId": 2, "content": CONTENT},
                headers={"Authorization": f"Bearer {token(1, secret='wrong' * 10)}"},
            )
            await call(
                "POST",
                "/api/messages/send",
                json={"recipientId": 1, "content": CONTENT},
                headers=auth(1),
            )
            await call("POST", "/api/messages/send", data=CONTENT, headers=auth(1))
            # the identity provider's paths: a token it signed, one for another audience, and
            # one of a key it does not publish while it is down (503 auth_unavailable)
            for bearer_token in (provider_token, provider.token(1, "rsa-1", aud="other")):
                await call(
                    "POST",
                    "/api/messages/send",
                    json={"recipientId": 2, "content": CONTENT},
                    headers={"Authorization": f"Bearer {bearer_token}"},
                )
            provider.status = 503
            await call(
                "POST",
                "/api/messages/send",
                json={"recipientId": 2, "content": CONTENT},
                headers={"Authorization": f"Bearer {unknown_key_token}"},
            )
            await call(
                "GET", "/admin/delivery-mode", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}
            )
            await call(
                "PUT",
                "/admin/delivery-mode",
                json={"mode": "sync"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            await call(
                "PUT",
                "/admin/delivery-mode",
                json={"mode": "default"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            await asyncio.sleep(0.5)
            await call("GET", "/metrics")
            await call("GET", "/metrics", headers={"Accept": "application/openmetrics-text"})
        service.signal(signal.SIGTERM)
        assert await service.wait() == 0
    finally:
        await service.stop()
    logs = await service.stderr()
    assert "Pusher trigger failed" in logs and "dead-lettered" in logs  # the run did go wrong
    assert "delivery mode changed" in logs
    statuses = [where.split(" ")[0] for where, _ in seen if where.endswith("/api/messages/send")]
    assert {"200", "401", "503"} <= set(statuses), statuses
    assert "JWKS fetch failed" in logs
    secrets = (JWT_SECRET, "sandbox-secret", ADMIN_TOKEN, DB_PASSWORD, SENTRY_KEY, CONTENT)
    # tokens are credentials: neither the provider's nor the shared-secret ones are logged
    tokens = (provider_token, unknown_key_token, token(1))
    for secret in (*secrets, *tokens):
        assert secret not in logs, f"{secret!r} leaked into the logs"
        for where, body in seen:
            if secret == CONTENT and where.startswith("200 /api/messages/send"):
                continue  # the sender gets its own message back: that is the API
            assert secret not in body, f"{secret!r} leaked into {where}"
    assert sum(where.startswith("200 /metrics") for where, _ in seen) == 2
