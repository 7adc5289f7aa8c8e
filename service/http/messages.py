"""Send a message; read a conversation's history."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from ..auth import tokens_of
from ..delivery import dispatcher_of, receipt_notices_of
from ..delivery.events import MAX_EVENT_DATA_BYTES, PusherEvent, data_size, encode_data
from ..errors import Forbidden, NotFound, PayloadTooLarge, RateLimited, ValidationFailed
from ..ids import MAX_ID, is_valid_id
from ..store import messages_of
from ..store.records import Message, NewSend
from ..telemetry import metrics_of
from ..telemetry.tracing import current_traceparent, exemplar
from .bodies import json_body, query_params
from .resources import send_limiter_of, send_writer_of
from .schemas import HistoryQuery, SendMessageRequest

#: the event's bytes besides content and clientMessageId, with every id at its widest
_FIXED_EVENT_BYTES = 300


async def send_message(request: web.Request) -> web.Response:
    """Store first, answer at once; Pusher is triggered by the dispatcher (background or sync)."""
    app = request.app
    user_id = await tokens_of(app).authenticate(request)
    metrics = metrics_of(app)
    wait = send_limiter_of(app).retry_after(user_id)
    if wait is not None:
        metrics.rate_limited.inc()
        raise RateLimited(wait)
    body = await json_body(request, SendMessageRequest)
    if body.senderId is not None and str(body.senderId) != str(user_id):
        raise Forbidden("senderId must be the authenticated user.")
    if body.recipientId == user_id:
        raise ValidationFailed("recipientId: cannot send a message to yourself.")
    _check_event_fits_pusher(body)
    async with dispatcher_of(app).slot() as delivery:
        started = time.perf_counter()
        stored = await send_writer_of(app).store(
            NewSend(
                sender_id=user_id,
                recipient_id=body.recipientId,
                content=body.content,
                client_message_id=body.clientMessageId,
                socket_id=body.socketId,
                claim=delivery.claim,
                traceparent=current_traceparent(),
            )
        )
        metrics.db_insert_duration.observe(time.perf_counter() - started, exemplar())
        # one encoding serves both the Pusher event and the response
        message_json = encode_data(stored.message.to_json())
        if stored.created:  # a repeated clientMessageId triggers nothing new
            metrics.messages_saved.inc()
            await delivery.hand_over(stored.message, body.socketId, message_json)
    return web.Response(
        text=f'{{"success":true,"message":{message_json}}}', content_type="application/json"
    )


async def conversation_messages(request: web.Request) -> web.Response:
    """A page of history, oldest first; 404 alike for unknown and not-yours conversations."""
    user_id = await tokens_of(request.app).authenticate(request)
    conversation_id = _path_id(request, "conversationId")
    query = query_params(request, HistoryQuery)
    store = messages_of(request.app)
    participants = await store.participants(conversation_id)
    if participants is None or user_id not in participants:
        raise NotFound("Conversation not found.")
    page = await store.history(
        conversation_id, after=query.after or 0, after_seq=query.afterSeq, limit=query.limit
    )
    full = len(page) == query.limit  # there may be more: the cursors say where to go on
    return web.json_response(
        {
            "success": True,
            "messages": [m.to_json() for m in page],
            "nextAfter": page[-1].id if full else None,
            "nextAfterSeq": page[-1].seq if full else None,
        }
    )


async def message_receipt(request: web.Request) -> web.Response:
    """The recipient's client saw the message; the first receipt measures delivery latency and
    tells the sender's clients (`message-received`)."""
    user_id = await tokens_of(request.app).authenticate(request)
    message_id = _path_id(request, "messageId")
    receipt = await messages_of(request.app).record_receipt(message_id, user_id)
    if receipt is not None:
        histogram = metrics_of(request.app).delivery_latency.labels("client_receipt")
        histogram.observe(receipt.latency_seconds, exemplar())
        await receipt_notices_of(request.app).announce(receipt)
    return web.json_response({"success": True})


def _path_id(request: web.Request, name: str) -> int:
    value = int(request.match_info[name])  # the route pattern admits digits only
    if not is_valid_id(value):
        raise NotFound()
    return value


def _check_event_fits_pusher(body: SendMessageRequest) -> None:
    """413 before storing anything when the event, with the widest ids, would exceed Pusher's
    per-event limit: a stored message that Pusher can never accept helps nobody."""
    # JSON escaping at most doubles a string's UTF-8 bytes (control characters other than
    # tab and newline are refused), so most sends are provably small enough without encoding.
    variable = len(body.content.encode()) + len((body.clientMessageId or "").encode())
    if 2 * variable + _FIXED_EVENT_BYTES <= MAX_EVENT_DATA_BYTES:
        return
    widest = Message(
        id=MAX_ID,
        conversation_id=MAX_ID,
        seq=MAX_ID,
        sender_id=MAX_ID,
        recipient_id=MAX_ID,
        content=body.content,
        client_message_id=body.clientMessageId,
        created_at=datetime(9999, 12, 31, tzinfo=UTC),
    )
    if data_size(PusherEvent.for_message(widest).data) > MAX_EVENT_DATA_BYTES:
        raise PayloadTooLarge(
            f"The message would exceed Pusher's {MAX_EVENT_DATA_BYTES}-byte event limit."
        )
