"""Group commit for sends: the sends that arrive while a statement runs are written together by
the next one, so many sends share one statement, one round trip and one WAL flush.

No added wait when it is quiet: a send that finds no statement running goes to the database at
once, alone, through the one-row statement, from its own request. Each send is answered only
once its own row is committed (fsync and synchronous_commit untouched), and individually: a
row the batch statement leaves out (first send of a conversation, a clientMessageId stored
before) or a batch that fails as a whole (a resend racing its original, a deadlock with
another replica) is stored again one by one, so one bad row never fails its neighbours.
(Hand-written: asyncpg has no batching of its own beyond `executemany`, which can neither
return rows nor isolate a failing one.)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import context as otel_context
from opentelemetry import trace

from ..errors import DatabaseUnavailable
from . import queries
from .database import Database
from .messages import MessageStore, ordered_pair
from .records import Message, NewSend, StoredSend

log = logging.getLogger(__name__)

#: statement-level failures of a batch that its rows, stored one by one, may not share
_BATCH_FAILURES = (
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.TransactionRollbackError,  # deadlock or serialization failure
    asyncpg.exceptions.DataError,
)


@dataclass(eq=False)
class _Waiting:
    send: NewSend
    answer: asyncio.Future[StoredSend]
    #: the sending request's span, linked from the batch's span
    origin: trace.SpanContext
    #: later sends of the same (sender, clientMessageId) in the same batch: the same message
    repeats: list[asyncio.Future[StoredSend]] = field(default_factory=list)


class SendWriter:
    """`store(send)` as `MessageStore.store_send` would, written together with the sends
    around it. One statement at a time: a send that finds none running is written at once by
    its own request (its span in the request's trace); the sends that arrive meanwhile wait
    for the writer's next batch (`max_rows` at most, a span of its own linked to each)."""

    def __init__(
        self,
        store: MessageStore,
        database: Database,
        *,
        max_rows: int,
        deadline: float,
        tracer: trace.Tracer,
        on_batch: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self._store = store
        self._database = database
        self._max_rows = max_rows
        self._deadline = deadline
        self._tracer = tracer
        self._on_batch = on_batch
        self._waiting: deque[_Waiting] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._alone: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        """Sends waiting for the next batch."""
        return len(self._waiting)

    async def store(self, send: NewSend) -> StoredSend:
        """The stored send, within `deadline` seconds (the pool's connect timeout plus one
        statement's; a statement given up on may take up to the connect timeout more to be
        cancelled, see `Database.connection`) or `DatabaseUnavailable`: a send queued behind
        statements that hang on a dead connection must not wait for each of them in turn. A
        send given up on while queued is not written; one given up on while its batch runs
        may still commit, as a statement that timed out may have: the client's retry with the
        same clientMessageId finds it."""
        try:
            async with asyncio.timeout(self._deadline):
                return await self._store_now_or_queued(send)
        except TimeoutError as error:
            raise DatabaseUnavailable() from error

    async def _store_now_or_queued(self, send: NewSend) -> StoredSend:
        if self._closed or (self._idle.is_set() and not self._waiting):
            # quiet (or shutting down, when handlers are done anyway): no batch to wait for
            self._idle.clear()
            try:
                self._on_batch(1)
                return await self._store.store_send(send)
            finally:
                self._idle.set()
        answer: asyncio.Future[StoredSend] = asyncio.get_running_loop().create_future()
        origin = trace.get_current_span().get_span_context()
        self._waiting.append(_Waiting(send, answer, origin))
        self._wake.set()
        return await answer

    async def run(self) -> None:
        """The writer: one batch at a time, until `close()` and nothing is left."""
        while not (self._closed and not self._waiting):
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                await self._idle.wait()  # a lone send's statement is running: after it
                self._idle.clear()
                batch = self._take_batch()
                try:
                    await self._write(batch)
                except Exception as error:  # a bug: still, no send may wait forever
                    log.exception("send batch failed unexpectedly")
                    for waiting in batch:
                        _fail(waiting, error)
                finally:
                    self._idle.set()
        if self._alone:
            await asyncio.gather(*self._alone, return_exceptions=True)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _take_batch(self) -> list[_Waiting]:
        batch: dict[tuple[int, str] | int, _Waiting] = {}
        while self._waiting and len(batch) < self._max_rows:
            waiting = self._waiting.popleft()
            if waiting.answer.done():  # given up on (deadline, request gone): not written
                continue
            send = waiting.send
            if send.client_message_id is None:
                batch[id(waiting)] = waiting
                continue
            key = (send.sender_id, send.client_message_id)
            if key in batch:  # a resend racing itself: one row, the same answer
                batch[key].repeats.append(waiting.answer)
            else:
                batch[key] = waiting
        return list(batch.values())

    async def _write(self, batch: list[_Waiting]) -> None:
        links = [trace.Link(w.origin) for w in batch if w.origin.is_valid]
        # a root span (it serves many requests), as the Pusher calls' are
        with self._tracer.start_as_current_span(
            "store sends",
            context=otel_context.Context(),
            links=links,
            attributes={"db.batch.rows": len(batch)},
        ):
            if len(batch) == 1:
                await self._store_alone(batch[0])
                return
            try:
                stored = await self._insert(batch)
            except Exception as error:  # the database is unavailable: every send hears so
                for waiting in batch:
                    _fail(waiting, error)
                return
        if stored:
            self._on_batch(len(stored))
        for ord_, waiting in enumerate(batch):
            message = stored.get(ord_)
            if message is not None:
                _answer(waiting, StoredSend(message, created=True))
            else:  # left out or failed with the batch: on its own, not holding up the next
                task = asyncio.create_task(self._store_alone(waiting))
                self._alone.add(task)
                task.add_done_callback(self._alone.discard)

    async def _insert(self, batch: list[_Waiting]) -> dict[int, Message]:
        """The batch statement; {} when it failed as a whole (rows go one by one)."""
        sends = [waiting.send for waiting in batch]
        claims = {send.claim for send in sends if send.claim is not None}
        assert len(claims) <= 1, "one replica writes its own sends"
        claim = next(iter(claims), None)
        pairs = [ordered_pair(send.sender_id, send.recipient_id) for send in sends]
        async with self._database.connection() as connection:
            try:
                rows = await connection.fetch(
                    queries.INSERT_MESSAGES_BATCH,
                    list(range(len(sends))),
                    [low for low, _ in pairs],
                    [high for _, high in pairs],
                    [send.sender_id for send in sends],
                    [send.recipient_id for send in sends],
                    [send.content for send in sends],
                    [send.client_message_id for send in sends],
                    [send.socket_id for send in sends],
                    [send.traceparent for send in sends],
                    [send.claim is not None for send in sends],
                    claim.replica if claim else None,
                    claim.lease_seconds if claim else 0.0,
                )
            except _BATCH_FAILURES as error:
                log.info("send batch stored row by row", extra={"rows": len(batch), "why": error})
                return {}
        return {row["ord"]: Message.from_row(row) for row in rows}

    async def _store_alone(self, waiting: _Waiting) -> None:
        self._on_batch(1)
        try:
            stored = await self._store.store_send(waiting.send)
        except Exception as error:
            _fail(waiting, error)
        else:
            _answer(waiting, stored)


def _answer(waiting: _Waiting, stored: StoredSend) -> None:
    if not waiting.answer.done():  # the request may have gone away meanwhile
        waiting.answer.set_result(stored)
    for repeat in waiting.repeats:
        if not repeat.done():
            repeat.set_result(StoredSend(stored.message, created=False))


def _fail(waiting: _Waiting, error: Exception) -> None:
    for future in (waiting.answer, *waiting.repeats):
        if not future.done():
            future.set_exception(error)
