"""A conversation's events do not wait behind its own slow calls, and keep their order when
Pusher is quick (issue 13, item 3)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import asyncpg

from service.sandbox import Fault
from service.settings import DeliverySettings

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, auth, eventually, sample, scrape

BURST = 40


def delivery(**overrides: Any) -> DeliverySettings:
    return DeliverySettings(**{"relay_poll_seconds": 0.05, "lease_seconds": 5.0, **overrides})


async def send(client: AppClient, content: str) -> dict[str, Any]:
    """User 1 to user 2: always the same conversation."""
    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": content}, headers=auth(1)
    )
    assert response.status == 200
    message: dict[str, Any] = (await response.json())["message"]
    return message


def accepted(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The MESSAGE of every event the sandbox accepted, in the order it accepted them."""
    return [json.loads(event.data) for event in sandbox.state.events]


async def all_held(client: AppClient, sandbox: Sandbox) -> None:
    """Until no event waits in the queue and every call the service runs is at the gate."""
    for _ in range(500):
        jobs = sample(samples := await scrape(client), "messages_background_jobs", state="active")
        waiting = sample(samples, "messages_background_jobs", state="pending")
        if waiting == 0 and 0 < jobs == sandbox.state.faults.held:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"{waiting} events waiting, {jobs} calls, {sandbox.state.faults.held} held"
    )


async def test_a_burst_in_one_conversation_goes_in_one_round_of_calls(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_concurrent_calls=8))
    sandbox.state.faults.set(Fault("hold"))  # every call waits at the gate: a very slow Pusher
    ids = [(await send(client, f"{n}"))["id"] for n in range(BURST)]
    # nothing sends any more: the calls in flight turning slow is what starts the others
    await all_held(client, sandbox)
    held = sandbox.state.faults.held
    assert held >= 1 + BURST // 10  # the first alone, then ≤ 10 each: all of them at once
    sandbox.state.faults.release()
    await eventually(lambda: {m["id"] for m in accepted(sandbox)} >= set(ids))
    calls = sandbox.state.trigger_calls
    assert len(calls) == held  # one round: no event waited for a call to come back
    assert all(c.status == 200 and 1 <= c.events <= 10 for c in calls)
    assert Counter(m["id"] for m in accepted(sandbox)) == Counter(ids)  # each exactly once


async def test_a_quick_pusher_gets_a_conversation_in_seq_order(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_concurrent_calls=8))
    # the first call takes a little longer (quick still): what is sent meanwhile waits for it
    sandbox.state.faults.set(Fault("delay", seconds=0.05, calls=1))
    sent = [await send(client, f"{n}") for n in range(BURST)]
    await eventually(lambda: len(accepted(sandbox)) >= BURST)
    assert [m["seq"] for m in accepted(sandbox)] == [m["seq"] for m in sent]  # in order, once
    assert max(c.events for c in sandbox.state.trigger_calls) > 1  # across batches, too
