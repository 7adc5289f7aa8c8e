"""Delivery that loses nothing: retries, batching, bounded memory, circuit breaker, relay."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import asyncpg
import pytest

from service.sandbox import Fault
from service.settings import DeliverySettings

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, auth, eventually, run_cli, sample, scrape

FAST = dict(
    relay_poll_seconds=0.05,
    retry_base_seconds=0.05,
    retry_cap_seconds=0.2,
    lease_seconds=5.0,
    backlog_refresh_seconds=0.1,
)


def delivery(**overrides: Any) -> DeliverySettings:
    return DeliverySettings(**{**FAST, **overrides})


async def send(
    client: AppClient, sender: int = 1, recipient: int = 2, content: str = "hi"
) -> dict[str, Any]:
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": content},
        headers=auth(sender),
    )
    assert response.status == 200
    message: dict[str, Any] = (await response.json())["message"]
    return message


def delivered_ids(sandbox: Sandbox) -> set[int]:
    return {json.loads(e.data)["id"] for e in sandbox.state.events}


async def all_delivered(sandbox: Sandbox, ids: Collection[int], timeout: float = 20.0) -> None:
    await eventually(lambda: set(ids) <= delivered_ids(sandbox), timeout)


async def delivered_row(db: asyncpg.Connection, message_id: int) -> asyncpg.Record:
    """The message's row once its delivery has been recorded."""
    for _ in range(200):
        row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
        assert row is not None
        if row["delivered_at"] is not None:
            return row
        await asyncio.sleep(0.02)
    raise AssertionError(f"message {message_id} was never marked delivered")


async def test_pusher_outage_during_a_stream_of_sends_loses_nothing(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    # The outage trips the circuit; while it is open nothing uses up attempts.
    client = await make_client(delivery=delivery(circuit_cooldown_seconds=0.2))
    sandbox.state.faults.set(Fault("status", status=503, duration=1.5))
    ids = []
    for n in range(30):
        ids.append((await send(client, content=f"m{n}"))["id"])  # each answered 200 at once
        await asyncio.sleep(0.03)
    assert any(call.status == 503 for call in sandbox.state.trigger_calls)
    await all_delivered(sandbox, ids)
    for message_id in ids:
        await delivered_row(db, message_id)
    metrics = await scrape(client)
    assert sample(metrics, "messages_pusher_requests_total", outcome="error") > 0
    assert sample(metrics, "messages_pusher_retries_total") > 0
    assert sample(metrics, "messages_dead_lettered_total") == 0


async def _conversation_stream(client: AppClient, n: int, messages: int) -> list[int]:
    """One client sending `messages` in a row in conversation n (users 2n+1 → 2n+2)."""
    return [
        (await send(client, sender=2 * n + 1, recipient=2 * n + 2, content=f"{i}"))["id"]
        for i in range(messages)
    ]


def _ids_by_channel(sandbox: Sandbox) -> dict[str, list[int]]:
    seen: defaultdict[str, list[int]] = defaultdict(list)
    for event in sandbox.state.events:
        seen[event.channel].append(json.loads(event.data)["id"])
    return seen


async def test_a_burst_of_1000_goes_out_in_about_100_batch_calls(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_concurrent_calls=8))
    sandbox.state.faults.set(Fault("delay", seconds=0.5))  # calls are slow: events pile up
    streams = await asyncio.gather(*(_conversation_stream(client, n, 10) for n in range(100)))
    ids = [i for stream in streams for i in stream]
    await all_delivered(sandbox, ids, timeout=60)
    accepted = [c for c in sandbox.state.trigger_calls if c.status == 200]
    assert all(1 <= c.events <= 10 for c in accepted)
    assert sum(c.events for c in accepted) == 1000  # no duplicates on the normal path
    assert 100 <= len(accepted) <= 125, f"{len(accepted)} calls for 1000 messages"
    assert len(sandbox.state.connections) <= 8 + 1  # keep-alive: the 8 calls, plus the probe
    for channel_ids in _ids_by_channel(sandbox).values():
        assert channel_ids == sorted(channel_ids)


async def test_each_conversation_keeps_its_order_within_and_across_batches(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_concurrent_calls=8))
    sandbox.state.faults.set(Fault("delay", seconds=0.2))
    streams = await asyncio.gather(*(_conversation_stream(client, n, 60) for n in range(3)))
    await all_delivered(sandbox, [i for stream in streams for i in stream], timeout=60)
    by_channel = _ids_by_channel(sandbox)
    assert sorted(by_channel.values()) == sorted(streams)  # every channel got its ids in order
    assert max(c.events for c in sandbox.state.trigger_calls) > 1  # and they did travel in batches


async def test_under_a_stream_a_call_lingers_until_its_batch_is_full(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(batch_linger_seconds=5.0))
    sandbox.state.faults.set(Fault("hold"))
    first = await send(client, content="first")  # a quiet moment: its call goes at once
    await eventually(lambda: sandbox.state.faults.held == 1)
    waiting = [(await send(client, content=f"w{n}"))["id"] for n in range(3)]
    sandbox.state.faults.release()
    await eventually(lambda: len(sandbox.state.trigger_calls) == 1)
    # the stream goes on: the three waiting events wait for seven more, not for the linger
    more = [(await send(client, content=f"m{n}"))["id"] for n in range(7)]
    await all_delivered(sandbox, [first["id"], *waiting, *more], timeout=4.0)
    assert [c.events for c in sandbox.state.trigger_calls] == [1, 10]


async def test_a_lone_event_never_waits_for_the_linger(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(batch_linger_seconds=30.0))
    for n in range(3):  # one at a time, each after the previous was delivered
        message = await send(client, content=f"alone {n}")
        await all_delivered(sandbox, [message["id"]], timeout=5.0)
    assert [c.events for c in sandbox.state.trigger_calls] == [1, 1, 1]


@pytest.mark.parametrize("status", [413, 400, 401])
async def test_permanent_rejection_is_dead_lettered_not_retried(
    make_client: MakeClient,
    sandbox: Sandbox,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    client = await make_client(delivery=delivery())
    sandbox.state.faults.set(Fault("status", status=status, calls=1))
    caplog.set_level(logging.WARNING)
    message = await send(client)
    await eventually(
        lambda: any(
            r.getMessage().endswith(")") and "dead-lettered" in r.getMessage()
            for r in caplog.records
        )
    )
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message["id"])
    assert row is not None
    assert row["dead_lettered_at"] is not None and row["delivered_at"] is None
    assert f"HTTP {status}" in row["dead_letter_reason"]
    await asyncio.sleep(0.3)  # several relay rounds: nothing retries it
    assert len(sandbox.state.trigger_calls) == 1
    assert sample(await scrape(client), "messages_dead_lettered_total") == 1
    dead_lines = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert len(dead_lines) == 1 and vars(dead_lines[0])["message_id"] == message["id"]


async def test_a_rejected_batch_is_retried_one_by_one_to_find_the_bad_event(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_concurrent_calls=1))
    sandbox.state.faults.set(Fault("hold"))
    first = await send(client)
    await eventually(lambda: sandbox.state.faults.held == 1)
    ids = [(await send(client, content=f"{n}"))["id"] for n in range(5)]  # these wait together
    sandbox.state.faults.set(
        Fault("status", status=400, calls=1)
    )  # for the call after the held one
    sandbox.state.faults.release()
    await all_delivered(sandbox, [first["id"], *ids])
    assert [c.events for c in sandbox.state.trigger_calls if c.status == 400] == [0]
    assert (
        await db.fetchval("SELECT count(*) FROM messages WHERE dead_lettered_at IS NOT NULL") == 0
    )


async def test_attempts_are_bounded_then_dead_lettered(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(max_attempts=3, circuit_failure_threshold=1000))
    sandbox.state.faults.set(Fault("status", status=500))
    message = await send(client)
    await eventually(lambda: len(sandbox.state.trigger_calls) >= 3)
    await asyncio.sleep(0.5)  # relay rounds after the last attempt: no fourth call
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message["id"])
    assert row is not None
    assert row["dead_lettered_at"] is not None
    assert row["dead_letter_reason"].startswith("gave up after 3 attempts")
    assert row["delivery_attempts"] == 3
    assert len(sandbox.state.trigger_calls) == 3
    metrics = await scrape(client)
    assert sample(metrics, "messages_pusher_retries_total") == 2
    assert sample(metrics, "messages_pusher_requests_total", outcome="error") == 3


async def test_circuit_opens_stops_calling_then_probes_and_drains(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(
        delivery=delivery(
            circuit_failure_threshold=3, circuit_cooldown_seconds=1.0, max_attempts=100
        )
    )
    sandbox.state.faults.set(Fault("status", status=503))
    ids = [(await send(client, content=f"{n}"))["id"] for n in range(3)]
    await eventually(lambda: len(sandbox.state.trigger_calls) >= 3)
    await eventually_async(lambda: _circuit(client), 1.0)
    calls_when_open = len(sandbox.state.trigger_calls)
    more = [(await send(client, content=f"later {n}"))["id"] for n in range(5)]  # still 200
    await asyncio.sleep(0.5)  # inside the cool-down: Pusher is left alone
    assert len(sandbox.state.trigger_calls) == calls_when_open
    stored_unclaimed = await db.fetchval(
        "SELECT count(*) FROM messages WHERE id = ANY($1::bigint[]) AND claimed_by IS NULL", more
    )
    assert stored_unclaimed == 5
    sandbox.state.faults.clear()
    await all_delivered(sandbox, ids + more)
    await eventually_async(lambda: _circuit(client), 0.0)


async def _circuit(client: AppClient) -> float:
    return sample(await scrape(client), "messages_pusher_circuit_open")


async def eventually_async(
    read: Callable[[], Awaitable[float]], expected: float, timeout: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {value}, wanted {expected}"
        await asyncio.sleep(0.05)


async def test_over_quota_pauses_delivery_without_spending_attempts(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(quota_pause_seconds=0.5, max_attempts=2))
    sandbox.state.faults.set(Fault("status", status=403, calls=1))
    message = await send(client)
    await eventually(lambda: len(sandbox.state.trigger_calls) == 1)
    await asyncio.sleep(0.3)
    assert len(sandbox.state.trigger_calls) == 1  # paused, not hammering
    await all_delivered(sandbox, [message["id"]])
    row = await delivered_row(db, message["id"])
    assert row["dead_lettered_at"] is None
    assert row["delivery_attempts"] == 1  # the successful call; the 403 did not count


async def test_a_full_queue_never_blocks_a_send_and_the_relay_catches_up(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(queue_capacity=2, max_concurrent_calls=1))
    sandbox.state.faults.set(Fault("hold"))
    ids = [
        (await send(client, sender=1 + n % 3, recipient=9, content=f"{n}"))["id"] for n in range(12)
    ]
    assert len(ids) == 12  # every send answered while Pusher held everything
    unclaimed = await db.fetchval("SELECT count(*) FROM messages WHERE claimed_by IS NULL")
    assert unclaimed >= 9  # only the queue's two places (and at most one call) were claimed
    metrics = await scrape(client)
    assert sample(metrics, "messages_background_jobs", state="pending") <= 2
    sandbox.state.faults.release()
    await all_delivered(sandbox, ids)


async def test_backlog_gauges_show_what_is_pending(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(
        delivery=delivery(circuit_failure_threshold=1000, retry_base_seconds=5, retry_cap_seconds=5)
    )
    sandbox.state.faults.set(Fault("status", status=503))
    for n in range(4):
        await send(client, content=f"{n}")
    await eventually_async(lambda: _gauge(client, "messages_undelivered"), 4.0)
    assert await _gauge(client, "messages_oldest_undelivered_age_seconds") > 0


async def _gauge(client: AppClient, name: str) -> float:
    return sample(await scrape(client), name)


async def test_shutdown_releases_claims_it_could_not_finish(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    client = await make_client(delivery=delivery(), shutdown_deadline_seconds=0.3)
    sandbox.state.faults.set(Fault("hold"))
    ids = [(await send(client, content=f"{n}"))["id"] for n in range(5)]
    await eventually(lambda: sandbox.state.faults.held >= 1)
    assert await db.fetchval("SELECT count(*) FROM messages WHERE claimed_by IS NOT NULL") == 5
    await asyncio.wait_for(client.close(), 5)
    rows = await db.fetch(
        "SELECT claimed_by, delivered_at FROM messages WHERE id = ANY($1::bigint[])", ids
    )
    assert all(r["claimed_by"] is None and r["delivered_at"] is None for r in rows)
    sandbox.state.faults.release()


async def test_messages_left_by_a_crashed_replica_are_delivered_after_the_lease(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    """A claim from a process that died (never released) runs out, then the relay takes it."""
    client = await make_client(delivery=delivery(lease_seconds=0.5))
    message = await send(client)
    await all_delivered(sandbox, [message["id"]])
    conversation = message["conversationId"]
    orphan = await db.fetchval(
        "WITH c AS (UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1"
        " RETURNING last_seq)"
        " INSERT INTO messages (conversation_id, seq, sender_id, recipient_id, content,"
        " claimed_by, claimed_until)"
        " SELECT $1, c.last_seq, 1, 2, 'orphan', 'dead-replica', now() + interval '0.5 seconds'"
        " FROM c RETURNING id",
        conversation,
    )
    await asyncio.sleep(0.2)
    assert orphan not in delivered_ids(sandbox)  # still leased to the dead replica
    await all_delivered(sandbox, [orphan])


async def test_dead_letters_can_be_listed_and_replayed(
    make_client: MakeClient, sandbox: Sandbox, db: asyncpg.Connection, database_url: str
) -> None:
    client = await make_client(delivery=delivery())
    sandbox.state.faults.set(Fault("status", status=400, calls=1))
    message = await send(client, content="private words")
    await eventually(lambda: len(sandbox.state.trigger_calls) == 1)
    for _ in range(100):
        if await db.fetchval(
            "SELECT dead_lettered_at IS NOT NULL FROM messages WHERE id = $1", message["id"]
        ):
            break
        await asyncio.sleep(0.02)
    listing = await run_cli(database_url, "dead-letters", "list", "--since", "1h")
    assert listing.startswith("1 dead-lettered message(s)")
    assert f"id={message['id']}" in listing and "HTTP 400" in listing
    assert "private words" not in listing  # never the content
    replay = await run_cli(database_url, "dead-letters", "replay", "--since", "1h")
    assert replay.startswith("1 dead-lettered message(s)")
    await all_delivered(sandbox, [message["id"]])  # the relay took it again
    row = await delivered_row(db, message["id"])
    assert row["dead_lettered_at"] is None
