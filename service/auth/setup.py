"""`auth.setup(app)`: the token verifier, and with AUTH_JWKS_URL the provider's keys, their
own HTTP session and their background refresher (one cleanup context)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from .. import __version__
from ..settings import SETTINGS
from ..telemetry import metrics_of
from ..wiring import getter, running
from .jwks import JwksKeys
from .tokens import TokenVerifier

log = logging.getLogger(__name__)

TOKENS = web.AppKey("tokens", TokenVerifier)
tokens_of = getter(TOKENS, "auth.setup")


def setup(app: web.Application) -> None:
    settings = app[SETTINGS].auth
    if settings.jwks_url is None:
        app[TOKENS] = TokenVerifier(settings)
    else:
        app.cleanup_ctx.append(_jwks)


async def _jwks(app: web.Application) -> AsyncIterator[None]:
    """The keys are fetched in the background from the start: the service starts (and is
    ready) while the provider is down; tokens whose key is unknown then get 503."""
    settings = app[SETTINGS].auth
    metrics = metrics_of(app).jwks()
    # its own session: the provider is another host than Pusher, with its own small pool
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=2, keepalive_timeout=30),
        headers={"User-Agent": f"message-send-service/{__version__}"},
    )
    keys = JwksKeys(
        settings, session, on_fetch=lambda ok: metrics.refreshes.labels(_outcome(ok)).inc()
    )
    metrics.keys_age.set_function(keys.age_seconds)
    metrics.keys.set_function(lambda: keys.count)
    app[TOKENS] = TokenVerifier(settings, keys)
    log.info(
        "client tokens: %s (JWKS of %s)",
        settings.methods,
        settings.issuer,
        extra={"jwks_url": settings.jwks_url, "user_claim": settings.user_claim},
    )
    try:
        async with running(keys.run()):  # the refresher
            yield
    finally:
        await keys.close()
        await session.close()


def _outcome(ok: bool) -> str:
    return "success" if ok else "error"
