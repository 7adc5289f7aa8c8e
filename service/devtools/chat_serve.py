"""`python -m service.devtools.chat_serve`: `python -m service serve` plus the dev chat page.

For benchmarks (bench/receipts.py) and never for production: `/chat/config.json` hands a bearer
token for dev users 1 and 2, signed with this process's AUTH_JWT_SECRET, to anyone who asks.

Everything else is serve's own code (`service.serving`): the settings from the environment,
migrations first, the same app, listen backlog, event loop, tracing and graceful shutdown. The
page's browser reaches the Pusher WebSocket at PUSHER_HOST:PUSHER_PORT with PUSHER_KEY: a local
sandbox.
"""

from __future__ import annotations

import sys

from ..environment import ConfigError
from ..exits import exit_status
from ..serving import migrate_now, serve
from ..settings import Settings
from ..telemetry.logging import configure_logging
from .chat_page import ChatPageConfig, add_chat_page
from .dev import dev_token


def chat_page_config(settings: Settings) -> ChatPageConfig:
    """Dev tokens signed with the service's own secret; the sandbox from the Pusher settings."""
    if settings.pusher.port is None:
        raise ConfigError("PUSHER_PORT must point at a local Pusher sandbox for the chat page")
    if settings.auth.jwt_secret is None:
        raise ConfigError("AUTH_JWT_SECRET must be set: the chat page signs dev tokens with it")
    secret = settings.auth.jwt_secret.reveal()
    return ChatPageConfig(
        token_for=lambda user: dev_token(user, secret),
        pusher_key=settings.pusher.key,
        ws_port=settings.pusher.port,
        ws_host=settings.pusher.host or "127.0.0.1",
    )


def main() -> int:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    migrate_now(settings)
    serve(settings, extend=lambda app: add_chat_page(app, chat_page_config(settings)))
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
