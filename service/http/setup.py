"""`http.setup(app)`: the error middleware, the token verifier, the send rate limit and the
routes."""

from __future__ import annotations

from aiohttp import web

from ..settings import SETTINGS
from .auth import TokenVerifier
from .middlewares import error_middleware
from .ratelimit import SendRateLimiter
from .resources import SEND_LIMITER, TOKENS
from .routes import add_routes


def setup(app: web.Application) -> None:
    """After telemetry.setup: the error middleware sits inside the request telemetry, so every
    request is timed with the status it was answered with."""
    settings = app[SETTINGS]
    app.middlewares.append(error_middleware)
    app[TOKENS] = TokenVerifier(settings.auth_jwt_secret)
    app[SEND_LIMITER] = SendRateLimiter(
        rate_per_second=settings.send_rate_per_second, burst=settings.send_rate_burst
    )
    add_routes(app)
