"""Two users chatting on the dev page in a real Chromium: every message shown exactly once, in
seq order, through a dropped WebSocket, a failing Pusher, a lost response and a slow send."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
import pytest
from playwright.async_api import Route

from service.sandbox import Fault

from ..conftest import Sandbox
from .conftest import ChatPage, OpenPage

pytestmark = pytest.mark.e2e


async def settled(chat: ChatPage, count: int, timeout: float = 20.0) -> list[dict[str, str]]:
    """Wait until the page shows `count` saved messages numbered 1..count in order."""
    deadline = time.monotonic() + timeout
    while True:
        shown = await chat.messages()
        seqs = [m["seq"] for m in shown]
        if seqs == [str(n) for n in range(1, count + 1)] and all(
            m["state"] != "sending" for m in shown
        ):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"user {chat.user}'s page never settled on {count}: {shown}")
        await asyncio.sleep(0.1)


def assert_each_once(shown: list[dict[str, str]], contents: list[str]) -> None:
    counts = Counter(m["content"] for m in shown)
    assert counts == Counter(contents), "each message exactly once"


async def stored(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT content, seq FROM messages")
    assert len(rows) == len({r["content"] for r in rows}), "nothing stored twice"
    return {r["content"]: r["seq"] for r in rows}


async def test_twenty_messages_each_way_shown_once_in_seq_order_on_both_pages(
    open_page: OpenPage, db: asyncpg.Connection
) -> None:
    alice, bob = await open_page(1), await open_page(2)
    contents = []
    for n in range(20):
        for chat in (alice, bob):
            contents.append(f"{chat.user}: message {n}")
            await chat.send(contents[-1])
    on_alice = await settled(alice, 40)
    on_bob = await settled(bob, 40)
    for shown in (on_alice, on_bob):
        assert_each_once(shown, contents)
        assert {m["content"]: int(m["seq"]) for m in shown} == await stored(db)
    # bob's page posted receipts for alice's messages; her page shows them received
    deadline = time.monotonic() + 15
    while any(m["state"] != "received" for m in await alice.messages() if m["content"][0] == "1"):
        assert time.monotonic() < deadline, await alice.messages()
        await asyncio.sleep(0.1)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM messages WHERE recipient_id = 2 AND received_at IS NOT NULL"
        )
        == 20
    )
    assert (await bob.stats())["receipts"] == 20
    assert alice.errors == bob.errors == []


async def test_a_dropped_websocket_misses_nothing_and_shows_nothing_twice(
    open_page: OpenPage, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    alice, bob = await open_page(1), await open_page(2)
    await alice.send("before the cut")
    await settled(bob, 1)
    before = await bob.stats()
    # both pages lose their connection, and cannot get it back while alice sends 10
    assert await sandbox.state.drop_connections(refuse_seconds=4) == 2
    contents = ["before the cut"] + [f"during the cut {n}" for n in range(10)]
    for content in contents[1:]:
        await alice.send(content)
    assert_each_once(await settled(alice, 11), contents)
    assert_each_once(await settled(bob, 11, timeout=40), contents)
    # reconnected and resubscribed, bob's client catches up once more: nothing new, no repeat
    await bob.page.wait_for_function(
        f"() => window.chat.client.stats.catchUps > {before['catchUps']}"
        " && window.chat.client.connectionState === 'connected'",
        timeout=30_000,
    )
    assert_each_once(await settled(bob, 11), contents)
    after = await bob.stats()
    print(f"\nbob's client across the WebSocket cut: {before} -> {after}")
    assert after["delivered"] == 11
    assert after["polls"] + after["catchUps"] > before["polls"] + before["catchUps"]
    assert sandbox.state.dropped_connections == 2
    assert alice.errors == bob.errors == []


async def test_a_failing_pusher_delays_messages_but_loses_none(
    open_page: OpenPage, sandbox: Sandbox, db: asyncpg.Connection
) -> None:
    alice, bob = await open_page(1), await open_page(2)
    sandbox.state.faults.set(Fault("status", status=503, duration=10))
    contents = [f"while Pusher fails {n}" for n in range(5)]
    for content in contents:
        await alice.send(content)
    assert_each_once(await settled(alice, 5), contents)  # saved: the send never waited
    assert_each_once(await settled(bob, 5, timeout=60), contents)
    assert any(call.status == 503 for call in sandbox.state.calls)
    print(f"\nbob's client across the Pusher outage: {await bob.stats()}")
    assert len(await stored(db)) == 5
    assert alice.errors == bob.errors == []


async def test_a_send_whose_response_is_lost_is_retried_and_stored_once(
    open_page: OpenPage, db: asyncpg.Connection
) -> None:
    alice, bob = await open_page(1), await open_page(2)
    lost: list[int] = []

    async def lose_the_first_answer(route: Route) -> None:
        if lost:
            await route.continue_()
            return
        answer = await route.fetch()  # the server stores the message and answers...
        lost.append(answer.status)
        await route.abort("connectionreset")  # ...and the page never hears it

    await alice.page.route("**/api/messages/send", lose_the_first_answer)
    await alice.send("answer lost once")
    assert_each_once(await settled(alice, 1), ["answer lost once"])
    assert_each_once(await settled(bob, 1), ["answer lost once"])
    assert lost == [200]
    assert await stored(db) == {"answer lost once": 1}
    assert (await alice.stats())["retries"] >= 1
    assert alice.errors == []


async def test_the_message_shows_before_the_server_answers_then_becomes_the_saved_one(
    open_page: OpenPage, db: asyncpg.Connection
) -> None:
    alice = await open_page(1)
    released = asyncio.Event()

    async def hold(route: Route) -> None:
        await released.wait()
        await route.continue_()

    await alice.page.route("**/api/messages/send", hold)
    await alice.send("optimistic")
    pending = alice.page.locator('[data-testid="message"][data-state="sending"]')
    await pending.wait_for()
    assert await pending.inner_text() != ""
    assert await db.fetchval("SELECT count(*) FROM messages") == 0  # not even sent yet
    released.set()
    shown = await settled(alice, 1)
    assert [(m["content"], m["state"]) for m in shown] == [("optimistic", "saved")]
    assert await stored(db) == {"optimistic": 1}
    assert alice.errors == []
