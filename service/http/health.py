"""Liveness and readiness for load balancers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..errors import DatabaseUnavailable
from ..store import database_of

READINESS_TIMEOUT_SECONDS = 1.0


async def healthz(request: web.Request) -> web.Response:
    """200 while the process runs; checks nothing else on purpose."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the database answers within a second, else 503 naming the check."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await database_of(request.app).ping()
    except (TimeoutError, DatabaseUnavailable):
        return web.json_response(
            {
                "success": False,
                "error": {"code": "not_ready", "message": "Check failed: database."},
                "checks": {"database": "failing"},
            },
            status=503,
        )
    return web.json_response({"status": "ok", "checks": {"database": "ok"}})
