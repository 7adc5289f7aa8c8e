"""Pusher's protocol version and limits, as the real Pusher enforces them."""

from __future__ import annotations

import re
from typing import TypeGuard

# Pusher's limits copied, not imported from the service: a shared wrong limit would pass both.

PROTOCOL_VERSION = "7"  # the WebSocket protocol pusher-js speaks
MAX_DATA_BYTES = 10_240
MAX_BATCH_EVENTS = 10
MAX_CHANNELS = 100
MAX_NAME_CHARS = 200
CHANNEL_NAME = re.compile(r"^[-a-zA-Z0-9_=@,.;]+$")
SOCKET_ID = re.compile(r"^\d+\.\d+$")


def is_channel_name(value: object) -> TypeGuard[str]:
    """Whether Pusher accepts `value` as a channel name (on the HTTP API and on subscribe)."""
    return (
        isinstance(value, str) and len(value) <= MAX_NAME_CHARS and bool(CHANNEL_NAME.match(value))
    )
