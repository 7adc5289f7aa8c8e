"""A Pusher Channels HTTP client on one long-lived aiohttp session.

The official `pusher` package builds and signs each request (`make_request`), so signing,
payload shape and channel-name validation stay Pusher's own code. Its `AsyncIOBackend` is not
used because it opens a new ClientSession, i.e. a new TCP/TLS connection, for every call.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pusher

from ..settings import PusherSettings
from .events import MAX_BATCH_EVENTS, PusherEvent

# What went wrong, not what to do about it: that is `failures.py`'s table.


class PusherError(Exception):
    """A call to Pusher did not succeed."""


class PusherTimeout(PusherError):
    """Pusher did not answer within PUSHER_TIMEOUT_SECONDS."""


class PusherUnreachable(PusherError):
    """The connection to Pusher failed or was dropped."""


class PusherRejected(PusherError):
    """Pusher answered with a non-2xx status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


def create_session(settings: PusherSettings) -> aiohttp.ClientSession:
    """One session for the process: a bounded connection pool and explicit timeouts."""
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections, keepalive_timeout=30, enable_cleanup_closed=True
    )
    timeout = aiohttp.ClientTimeout(
        total=settings.timeout_seconds, connect=min(settings.timeout_seconds, 2.0)
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, raise_for_status=False)


class PusherClient:
    """Triggers events and authorises private channels for one Pusher app."""

    def __init__(self, settings: PusherSettings, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._signer = pusher.Pusher(
            app_id=settings.app_id,
            key=settings.key,
            secret=settings.secret.reveal(),
            cluster=settings.cluster,
            host=settings.host,
            port=settings.port,
            ssl=settings.scheme == "https",
            timeout=settings.timeout_seconds,
        )
        self.key = settings.key

    async def trigger(self, event: PusherEvent) -> None:
        """POST /apps/{id}/events for one event."""
        request = self._signer._pusher_client.trigger.make_request(
            event.channel, event.name, event.data, event.socket_id
        )
        await self._send(request)

    async def trigger_batch(self, events: list[PusherEvent]) -> None:
        """POST /apps/{id}/batch_events for up to MAX_BATCH_EVENTS events."""
        if not 1 <= len(events) <= MAX_BATCH_EVENTS:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_EVENTS} events, got {len(events)}")
        batch = [_batch_item(event) for event in events]
        request = self._signer._pusher_client.trigger_batch.make_request(batch)
        await self._send(request)

    async def channels(self) -> dict[str, Any]:
        """GET /apps/{id}/channels: a cheap signed call, used as an availability probe."""
        request = self._signer._pusher_client.channels_info.make_request()
        result = await self._send(request)
        return result if isinstance(result, dict) else {}

    def authenticate(self, channel: str, socket_id: str) -> dict[str, Any]:
        """The `{"auth": "<key>:<signature>"}` answer for a private channel subscription."""
        answer: dict[str, Any] = self._signer.authenticate(channel=channel, socket_id=socket_id)
        return answer

    async def _send(self, request: Any) -> Any:
        url = f"{request.base_url}{request.path}"
        try:
            async with self._session.request(
                request.method,
                url,
                params=request.query_params,
                data=request.body,
                headers=request.headers,
            ) as response:
                body = await response.text("utf-8")
        except TimeoutError as exc:
            raise PusherTimeout() from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise PusherUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if response.status not in (200, 202):
            raise PusherRejected(response.status, body)
        return _json_or_none(body)


def _batch_item(event: PusherEvent) -> dict[str, str]:
    item = {"channel": event.channel, "name": event.name, "data": event.data}
    if event.socket_id:
        item["socket_id"] = event.socket_id
    return item


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
