"""Group commit: concurrent sends share a statement, each answered individually and correctly
(new conversations, resends, a failing row), seq gap-free inside a batch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from service.http.resources import send_writer_of
from service.store import queries

from ..helpers import AppClient, auth, eventually, sample, scrape


async def post(client: AppClient, sender: int, recipient: int, content: str, **body: Any) -> Any:
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": content, **body},
        headers=auth(sender),
    )
    return response.status, await response.json()


async def held_batch(
    client: AppClient, db: asyncpg.Connection, sends: list[tuple[int, int, str, dict[str, Any]]]
) -> list[Any]:
    """Hold the writer on a lone send blocked by a row lock, queue `sends` behind it, then let
    go: they are written by one batch (the order of the queue is the order given)."""
    await post(client, 8, 9, "the blocker's conversation")
    writer = send_writer_of(client.app)
    async with db.transaction():
        await db.execute("SELECT 1 FROM conversations WHERE user_low = 8 FOR UPDATE")
        blocker = asyncio.create_task(post(client, 9, 8, "blocked"))
        await asyncio.sleep(0.1)  # the blocker's statement waits on the lock
        tasks = []
        for sender, recipient, content, extra in sends:
            tasks.append(asyncio.create_task(post(client, sender, recipient, content, **extra)))
            queued = len(tasks)
            await eventually(lambda: writer.queued == queued)  # noqa: B023 (awaited here)
    assert (await blocker)[0] == 200
    return list(await asyncio.gather(*tasks))


async def test_concurrent_sends_share_statements(client: AppClient, db: asyncpg.Connection) -> None:
    await post(client, 1, 2, "first")
    before = sample(await scrape(client), "messages_db_insert_batch_rows_count")
    answers = await asyncio.gather(
        *(post(client, 1 + n % 2, 2 - n % 2, f"m{n}") for n in range(60))
    )
    assert all(status == 200 for status, _ in answers)
    metrics = await scrape(client)
    statements = sample(metrics, "messages_db_insert_batch_rows_count") - before
    assert sample(metrics, "messages_db_insert_batch_rows_sum") == 61
    assert statements < 60  # some sends shared a statement
    seqs = sorted(body["message"]["seq"] for _, body in answers)
    assert seqs == list(range(2, 62))


async def test_a_lone_send_is_one_row_at_once(client: AppClient) -> None:
    status, _ = await post(client, 1, 2, "alone")
    assert status == 200
    metrics = await scrape(client)
    assert sample(metrics, "messages_db_insert_batch_rows_bucket", le="1.0") == 1
    assert sample(metrics, "messages_db_insert_batch_rows_count") == 1


async def test_each_send_of_a_batch_is_answered_as_if_alone(
    client: AppClient, db: asyncpg.Connection
) -> None:
    """A batch holding: sends in one conversation, the first send of a new conversation, a
    resend of a stored message, and the same new key twice."""
    status, stored = await post(client, 1, 2, "stored before", clientMessageId="old")
    assert status == 200
    answers = await held_batch(
        client,
        db,
        [
            (1, 2, "a", {}),
            (2, 1, "b", {}),
            (1, 5, "new conversation", {}),
            (1, 2, "stored before, again", {"clientMessageId": "old"}),
            (2, 1, "twice", {"clientMessageId": "k"}),
            (2, 1, "twice, again", {"clientMessageId": "k"}),
            (1, 2, "c", {}),
        ],
    )
    assert [status for status, _ in answers] == [200] * 7
    messages = [body["message"] for _, body in answers]
    a, b, new, again, twice, twice_again, c = messages
    assert [m["seq"] for m in (a, b, twice, c)] == [2, 3, 4, 5]  # gap-free, in arrival order
    assert new["seq"] == 1 and new["conversationId"] != a["conversationId"]
    assert again == stored["message"]
    assert twice_again == twice and twice["content"] == "twice"
    counts = await db.fetch(
        "SELECT conversation_id, count(*) AS n, max(seq) AS top FROM messages"
        " WHERE sender_id IN (1, 2) GROUP BY conversation_id ORDER BY conversation_id"
    )
    assert [(r["n"], r["top"]) for r in counts] == [(5, 5), (1, 1)]
    metrics = await scrape(client)
    statements = sample(metrics, "messages_db_insert_batch_rows_count")
    # one statement stored a, b, twice and c; the new conversation and the resend went alone
    assert statements - sample(metrics, "messages_db_insert_batch_rows_bucket", le="2.0") == 1


async def test_a_row_that_fails_never_fails_its_neighbours(
    client: AppClient, db: asyncpg.Connection
) -> None:
    """A row the database refuses (here a trigger, standing in for any row-level failure)
    fails the batch statement; its rows are stored one by one and only that one fails."""
    await db.execute(
        """
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.content = 'poison' THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'data_exception';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
            FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """
    )
    try:
        await post(client, 1, 2, "first")
        answers = await held_batch(
            client, db, [(1, 2, "x", {}), (2, 1, "poison", {}), (1, 2, "y", {})]
        )
    finally:
        await db.execute("DROP TRIGGER refuse_poison ON messages; DROP FUNCTION refuse_poison()")
    (x_status, x), (p_status, p), (y_status, y) = answers
    assert (x_status, p_status, y_status) == (200, 422, 200)
    assert p["error"]["code"] == "validation_failed"
    assert sorted([x["message"]["seq"], y["message"]["seq"]]) == [2, 3]  # poison took none
    assert await db.fetchval("SELECT count(*) FROM messages WHERE content = 'poison'") == 0


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


async def test_a_batch_locks_its_conversations_in_id_order(db: asyncpg.Connection) -> None:
    """Two replicas' batches sharing conversations once deadlocked (4 in 40 s of two-replica
    wrk, p99 0.9 s): the UPDATE locked rows in whatever order its join met them. The statement
    now locks them first, sorted by id (so any two batches lock in one order): the plan must
    show rows locked over a sort by the conversation id."""
    explained = await db.fetchval(
        "EXPLAIN (FORMAT JSON) " + queries.INSERT_MESSAGES_BATCH,
        [0],
        [1],
        [2],
        [1],
        [2],
        ["x"],
        [None],
        [None],
        [None],
        [False],
        None,
        0.0,
    )
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    lockers = [n for n in _plan_nodes(plan) if n["Node Type"] == "LockRows"]
    assert lockers, "the conversations are not locked before the update"
    sorts = [c for n in lockers for c in n.get("Plans", []) if c["Node Type"] == "Sort"]
    assert any(key.endswith(".id") for s in sorts for key in s["Sort Key"]), sorts
