"""Delivery latency at a steady load: commit → Pusher acceptance (the sandbox's clock) and
commit → a subscribed WebSocket client receiving the event (this process's clock; one machine,
one clock)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import aiohttp

from service.sandbox.signing import channel_auth

from .load import bearer
from .stack import Stack, service


@dataclass(frozen=True)
class SteadyDeliveryRun:
    """One run's raw latencies, ms from commit; `report.spread` summarises several runs."""

    messages: int
    received: int
    ack_ms: list[float]
    client_ms: list[float]


class SentMessage(TypedDict):
    """The fields of a send's response message that the measurement uses."""

    id: int
    conversationId: int
    createdAt: str


def _committed(message: SentMessage) -> float:
    return datetime.fromisoformat(message["createdAt"].replace("Z", "+00:00")).timestamp()


async def _subscriber(
    stack: Stack, channels: list[str], arrivals: dict[int, float]
) -> asyncio.Task[None]:
    """A protocol-7 client on the sandbox, subscribed to every channel, recording arrivals."""
    config = stack.sandbox
    url = stack.sandbox_url.replace("http", "ws") + f"/app/{config.key}?protocol=7&client=bench"
    session = aiohttp.ClientSession()
    socket = await session.ws_connect(url)
    established = json.loads((await socket.receive_json())["data"])
    for channel in channels:
        auth = channel_auth(
            key=config.key,
            secret=config.secret,
            socket_id=established["socket_id"],
            channel=channel,
        )
        await socket.send_json(
            {"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}
        )
    for _ in channels:
        reply = await socket.receive_json()
        assert reply["event"] == "pusher_internal:subscription_succeeded", reply

    async def listen() -> None:
        try:
            async for frame in socket:
                event = frame.json()
                if event.get("event") == "new-message":
                    arrivals[json.loads(event["data"])["id"]] = time.time()
        finally:
            await socket.close()
            await session.close()

    return asyncio.create_task(listen())


async def _all_arrived(arrivals: dict[int, float], ids: list[int], timeout: float) -> None:
    """Give the last events a moment to arrive (a poll is fine: this is the harness)."""
    deadline = time.time() + timeout
    while not all(i in arrivals for i in ids) and time.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def steady_delivery(
    stack: Stack, *, rate: float = 100, seconds: float = 10
) -> SteadyDeliveryRun:
    pairs = [(2 * n + 1, 2 * n + 2) for n in range(10)]
    arrivals: dict[int, float] = {}
    async with service(stack) as svc, aiohttp.ClientSession() as session:

        async def send(sender: int, recipient: int, n: int) -> SentMessage:
            async with session.post(
                f"{svc.base}/api/messages/send",
                json={"recipientId": recipient, "content": f"steady {n}"},
                headers={"Authorization": bearer(sender)},
            ) as response:
                message: SentMessage = (await response.json())["message"]
                return message

        first = [await send(a, b, -1) for a, b in pairs]
        channels = [f"private-conversation-{m['conversationId']}" for m in first]
        listener = await _subscriber(stack, channels, arrivals)
        await stack.sandbox_reset(session)
        sent: list[SentMessage] = []
        start = time.perf_counter()
        total = int(rate * seconds)
        pending: list[asyncio.Task[SentMessage]] = []
        for n in range(total):
            sender, recipient = pairs[n % len(pairs)]
            pending.append(asyncio.create_task(send(sender, recipient, n)))
            await asyncio.sleep(max(0.0, start + (n + 1) / rate - time.perf_counter()))
        sent = list(await asyncio.gather(*pending))
        await _all_arrived(arrivals, [m["id"] for m in sent], timeout=10)
        accepted = {
            json.loads(e["data"])["id"]: e["received_at"]
            for e in (await stack.sandbox_events(session))["events"]
        }
        listener.cancel()
    ack = [1000 * (accepted[m["id"]] - _committed(m)) for m in sent if m["id"] in accepted]
    client = [1000 * (arrivals[m["id"]] - _committed(m)) for m in sent if m["id"] in arrivals]
    return SteadyDeliveryRun(len(sent), len(client), ack, client)
