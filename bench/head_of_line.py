"""Head-of-line blocking under a slow Pusher: a quick burst in ONE conversation while every
Pusher call takes `delay` seconds. Does each event wait behind its own conversation's calls?"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp

from .latency import SentMessage
from .load import bearer
from .stack import SandboxListing, Stack, service

#: the one conversation of the burst: user 1 writes to user 2
_SENDER, _RECIPIENT = 1, 2


@dataclass(frozen=True)
class HeadOfLineRun:
    """Seconds per message, in seq order, from the answer to its send (this process's clock;
    one machine, one clock) to the sandbox receiving the call that carried it (`reached`) and
    to that call being answered (`answered`, polled every 20 ms)."""

    messages: int
    delay: float
    #: event-carrying Pusher calls the burst took
    calls: int
    reached: list[float]
    answered: list[float]

    @property
    def last_answered(self) -> float:
        return max(self.answered)


async def _send(session: aiohttp.ClientSession, base: str, n: int) -> tuple[SentMessage, float]:
    async with session.post(
        f"{base}/api/messages/send",
        json={"recipientId": _RECIPIENT, "content": f"head of line {n}"},
        headers={"Authorization": bearer(_SENDER)},
    ) as response:
        message: SentMessage = (await response.json())["message"]
    return message, time.time()


def _accepted(listing: SandboxListing) -> dict[int, float]:
    """Message id → when the sandbox received the call that carried it."""
    return {json.loads(e["data"])["id"]: e["received_at"] for e in listing["events"]}


async def _watch_answers(
    stack: Stack, session: aiohttp.ClientSession, ids: set[int], timeout: float
) -> tuple[dict[int, float], SandboxListing]:
    """When each message first shows up as accepted: the sandbox lists an event only once
    its call is answered (after the injected delay)."""
    answered: dict[int, float] = {}
    deadline = time.time() + timeout
    while True:
        listing = await stack.sandbox_events(session)
        now = time.time()
        for message_id in _accepted(listing):
            answered.setdefault(message_id, now)
        if ids <= answered.keys() or now > deadline:
            return answered, listing
        await asyncio.sleep(0.02)


async def head_of_line(stack: Stack, *, messages: int = 40, delay: float = 3.0) -> HeadOfLineRun:
    """`messages` sends in a row into one conversation while Pusher takes `delay` per call."""
    async with aiohttp.ClientSession() as session, service(stack) as svc:
        warm, _ = await _send(session, svc.base, -1)  # the conversation and connections exist
        await _watch_answers(stack, session, {warm["id"]}, timeout=10)
        await stack.sandbox_reset(session)
        await stack.sandbox_fault(session, kind="delay", seconds=delay)
        sent = [await _send(session, svc.base, n) for n in range(messages)]
        ids = {message["id"] for message, _ in sent}
        answered, listing = await _watch_answers(stack, session, ids, timeout=20 * delay)
        await stack.sandbox_fault(session)
    reached = _accepted(listing)
    sent.sort(key=lambda pair: pair[0]["id"])
    calls = sum(1 for c in listing["calls"] if not c["path"].endswith("/channels"))
    return HeadOfLineRun(
        messages=messages,
        delay=delay,
        calls=calls,
        reached=[reached[m["id"]] - at for m, at in sent],
        answered=[answered[m["id"]] - at for m, at in sent],
    )
