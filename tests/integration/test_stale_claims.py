"""A replica frozen past its lease (SIGSTOP, a VM pause) wakes up still holding work that
another replica has taken over since. Whatever it writes then must not undo anything: no
claim taken back, no retry scheduled or dead letter for a message it no longer holds, no
delivered message made pending again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from service.devtools.postgres import LocalPostgres
from service.store.database import Database
from service.store.messages import MessageStore
from service.store.outbox import Outbox
from service.store.records import Claim, NewSend

from ..conftest import create_database

LEASE = 30.0


async def _row(db: asyncpg.Connection, message_id: int) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
    assert row is not None
    return row


@pytest.fixture
async def own_database(postgres: LocalPostgres) -> AsyncIterator[str]:
    """A database of its own: the claims below must not touch other tests' messages."""
    yield await create_database(postgres, f"stale_claims_{uuid.uuid4().hex[:8]}")


async def test_a_lapsed_replica_cannot_undo_the_replica_that_took_over(
    own_database: str,
) -> None:
    database = await Database.open(own_database)
    db = await asyncpg.connect(own_database)
    try:
        frozen = Outbox(database, Claim("frozen-replica", LEASE))
        other = Outbox(database, Claim("other-replica", LEASE))
        stored = await MessageStore(database).store_send(
            NewSend(
                sender_id=7001,
                recipient_id=7002,
                content="stale claims",
                client_message_id=None,
                socket_id=None,
                claim=frozen.claim,  # the send path's claim, as the frozen replica took it
                traceparent=None,
            )
        )
        message_id = stored.message.id
        assert await db.fetchval("SELECT claimed_by FROM messages WHERE id = $1", message_id) == (
            "frozen-replica"
        )
        # the frozen replica's lease runs out; the other replica's relay takes the message
        await db.execute(
            "UPDATE messages SET claimed_until = now() - interval '1 second' WHERE id = $1",
            message_id,
        )
        assert message_id in [d.message.id for d in await other.claim_due(limit=1000)]
        before = await _row(db, message_id)

        # the frozen one wakes: its call failed, it schedules a retry; or it gives up
        await frozen.release_for_retry([message_id], [60.0], "stale", count_attempt=True)
        assert await frozen.dead_letter([message_id], "stale give-up") == []
        await frozen.release([message_id])
        await frozen.renew_claims()
        after = await _row(db, message_id)
        assert dict(after) == dict(before)  # nothing moved: still the other replica's
        assert after["claimed_by"] == "other-replica"

        # the other replica delivers; the frozen one's late writes change nothing again
        await other.mark_delivered([message_id])
        delivered = await _row(db, message_id)
        await frozen.release_for_retry([message_id], [60.0], "stale", count_attempt=True)
        assert await frozen.dead_letter([message_id], "stale give-up") == []
        await frozen.mark_delivered([message_id])  # its own call got through too: a duplicate
        final = await _row(db, message_id)
        assert dict(final) == dict(delivered)
        assert final["delivered_by"] == "other-replica" and final["dead_lettered_at"] is None
    finally:
        await db.close()
        await database.close()
