"""The environment of a `python -m service serve` process pointed at the sandbox Pusher: what
the end-to-end tests and the benchmarks start alike."""

from __future__ import annotations

import os

from ..sandbox import SandboxConfig

#: variables of the surrounding shell that would point the process elsewhere
_OWN_PREFIXES = ("PUSHER_", "DATABASE_", "AUTH_")


def service_environment(
    *,
    database_url: str,
    sandbox: SandboxConfig,
    sandbox_port: int,
    jwt_secret: str,
    **extra: str,
) -> dict[str, str]:
    """The inherited environment (less anything Pusher, database or auth), the sandbox's
    credentials, and no per-user send limit: tests and load generators send far more per user
    than a person would. `extra` (e.g. PORT, DELIVERY_MODE) goes last and wins."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    return {
        **inherited,
        "DATABASE_URL": database_url,
        "AUTH_JWT_SECRET": jwt_secret,
        "PUSHER_APP_ID": sandbox.app_id,
        "PUSHER_KEY": sandbox.key,
        "PUSHER_SECRET": sandbox.secret,
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": str(sandbox_port),
        "PUSHER_SCHEME": "http",
        "SEND_RATE_PER_SECOND": "1000000",
        "SEND_RATE_BURST": "1000000",
        **extra,
    }
