"""Sentry: on when SENTRY_DSN is set. Unexpected errors and dead letters, never content or
secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.aiohttp import AioHttpIntegration
from sentry_sdk.integrations.asyncio import AsyncioIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from .. import __version__

FILTERED = "[Filtered]"


def configure_sentry(
    dsn: str | None, *, secrets: Iterable[str], environment: str | None = None
) -> None:
    """Initialise the SDK; a no-op without a DSN (every capture call is then a no-op too)."""
    if not dsn:
        return
    hidden = [value for value in secrets if value]
    sentry_sdk.init(
        dsn=dsn,
        release=f"message-send-service@{__version__}",
        environment=environment,
        max_request_body_size="never",  # a request body is a message's content
        include_local_variables=False,  # locals hold content and secrets
        integrations=[
            AioHttpIntegration(transaction_style="method_and_path_pattern"),
            AsyncioIntegration(),
            # ERROR log lines become breadcrumbs, not events: events are captured explicitly
            # below, once each, with the right tags.
            LoggingIntegration(level=logging.INFO, event_level=None),
        ],
        before_send=lambda event, hint: _scrub(event, hidden),
        before_breadcrumb=lambda crumb, hint: _scrub(crumb, hidden),
    )


def capture_unexpected(error: BaseException, **tags: str) -> None:
    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        sentry_sdk.capture_exception(error)


def report_dead_letter(*, message_id: int, conversation_id: int, reason: str) -> None:
    """One event per dead-lettered message (not per retry), grouped by kind of reason."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("message_id", str(message_id))
        scope.set_tag("conversation_id", str(conversation_id))
        scope.set_context("delivery", {"reason": reason})
        scope.fingerprint = ["message-dead-lettered", reason.split(":", 1)[0]]
        sentry_sdk.capture_message("Message delivery dead-lettered", level="error")


def _scrub(value: Any, secrets: list[str]) -> Any:
    """Replace every secret wherever it appears; drop request bodies and credentials."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in ("authorization", "cookie", "data", "body"):
                cleaned[key] = FILTERED
            else:
                cleaned[key] = _scrub(item, secrets)
        return cleaned
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, FILTERED)
    return value
