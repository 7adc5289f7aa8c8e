"""The sandbox's state: what it accepted, what it was asked, who listens, and its faults."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from .faults import FaultInjector


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    app_id: str = "1"
    key: str = "sandbox-key"
    secret: str = "sandbox-secret"
    activity_timeout: int = 120


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    channel: str
    name: str
    data: str
    socket_id: str | None
    received_at: float  # time.time() when the sandbox accepted it

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "name": self.name,
            "data": self.data,
            "socket_id": self.socket_id,
            "received_at": self.received_at,
        }


@dataclass(frozen=True, slots=True)
class ApiCall:
    path: str
    status: int
    events: int


@dataclass
class SandboxState:
    """Everything a test may want to look at or change."""

    config: SandboxConfig
    faults: FaultInjector = field(default_factory=FaultInjector)
    events: list[AcceptedEvent] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    #: transports that made API calls: how many connections clients opened
    connections: set[int] = field(default_factory=set)
    subscriptions: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    sockets: dict[web.WebSocketResponse, str] = field(default_factory=dict)
    event_arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: time.monotonic() until which new client connections are refused (a network cut)
    refuse_connections_until: float = 0.0
    #: client connections the sandbox dropped on purpose, in total
    dropped_connections: int = 0

    @property
    def trigger_calls(self) -> list[ApiCall]:
        """Calls that carry events (not the channel listing that probes use)."""
        return [call for call in self.calls if not call.path.endswith("/channels")]

    def refusing_connections(self) -> bool:
        return time.monotonic() < self.refuse_connections_until

    async def drop_connections(self, refuse_seconds: float = 0.0) -> int:
        """Close every client WebSocket (as a network cut would, without a Pusher error) and
        refuse new ones for `refuse_seconds`; returns how many were closed."""
        self.refuse_connections_until = time.monotonic() + refuse_seconds
        sockets = list(self.sockets)
        for socket in sockets:
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"connection dropped")
        self.dropped_connections += len(sockets)
        return len(sockets)

    def reset(self) -> None:
        self.refuse_connections_until = 0.0
        self.faults.clear()
        self.events.clear()
        self.calls.clear()
        self.connections.clear()

    async def accept(self, events: list[AcceptedEvent]) -> None:
        self.events.extend(events)
        for event in events:
            await self._broadcast(event)
        async with self.event_arrived:
            self.event_arrived.notify_all()

    async def wait_for_events(self, count: int, timeout: float = 10.0) -> list[AcceptedEvent]:
        """Wait until at least `count` events were accepted (tests use it instead of sleeps)."""
        async with asyncio.timeout(timeout), self.event_arrived:
            await self.event_arrived.wait_for(lambda: len(self.events) >= count)
        return list(self.events)

    async def _broadcast(self, event: AcceptedEvent) -> None:
        # Here rather than in websocket.py: the state owns the subscriptions, and websocket.py
        # importing state (never the reverse) keeps the modules free of a circle.
        message = {"event": event.name, "channel": event.channel, "data": event.data}
        for socket in list(self.subscriptions.get(event.channel, ())):
            if self.sockets.get(socket) == event.socket_id:
                continue  # the sender's own connection gets no echo
            if not socket.closed:
                await socket.send_json(message)


SANDBOX = web.AppKey("sandbox", SandboxState)


def now() -> float:
    return time.time()
