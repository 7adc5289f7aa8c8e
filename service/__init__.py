"""Message send service: save to PostgreSQL, answer at once, deliver to Pusher in the background."""

from __future__ import annotations

__version__ = "0.1.0"
