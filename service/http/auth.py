"""The shared admin token for the admin endpoints (client tokens: `service/auth/`)."""

from __future__ import annotations

import hmac

from aiohttp import web

from ..auth.tokens import bearer_token
from ..errors import Unauthorized
from ..secret import Secret


def check_admin_token(request: web.Request, admin_token: Secret | None) -> None:
    """Constant-time comparison against ADMIN_TOKEN; unset means the admin API is disabled."""
    if admin_token is None:
        raise Unauthorized("The admin API is disabled (ADMIN_TOKEN is not set).")
    given = bearer_token(request).encode()
    if not hmac.compare_digest(given, admin_token.reveal().encode()):
        raise Unauthorized("The admin token is invalid.")
