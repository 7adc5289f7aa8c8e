"""The HTTP layer's own resources on the app (set by `http.setup`), and their getters."""

from __future__ import annotations

from aiohttp import web

from ..store.group_commit import SendWriter
from ..wiring import getter
from .ratelimit import SendRateLimiter

SEND_LIMITER = web.AppKey("send_limiter", SendRateLimiter)
SEND_WRITER = web.AppKey("send_writer", SendWriter)


send_limiter_of = getter(SEND_LIMITER, "http.setup")
send_writer_of = getter(SEND_WRITER, "http.setup")
