from __future__ import annotations

import json
from datetime import UTC, datetime

import pusher

from service.delivery.events import PusherEvent, data_size
from service.delivery.failures import Verdict, treatment_of
from service.delivery.pusher_client import PusherRejected
from service.sandbox.signing import channel_auth, verify_request
from service.store.records import Message, rfc3339


def message(content: str = "hi") -> Message:
    return Message(1, 7, 1, 1, 2, content, None, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))


def test_event_for_a_message() -> None:
    event = PusherEvent.for_message(message(), socket_id="1.2")
    assert (event.channel, event.name, event.socket_id) == (
        "private-conversation-7",
        "new-message",
        "1.2",
    )
    assert json.loads(event.data) == message().to_json()
    assert json.loads(event.data)["createdAt"] == "2026-01-02T03:04:05.000006Z"


def test_data_is_utf8_not_ascii_escaped() -> None:
    event = PusherEvent.for_message(message("😀" * 10))
    assert "😀" in event.data
    assert data_size(event.data) == len(event.data.encode("utf-8"))


def test_rfc3339_converts_to_utc() -> None:
    from datetime import timedelta, timezone

    moment = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(moment) == "2026-01-01T10:00:00.000000Z"


def test_rejections_are_classified() -> None:
    def retryable(status: int) -> bool:
        return treatment_of(PusherRejected(status, "")).verdict is not Verdict.DEAD_LETTER

    assert retryable(500) and retryable(503)
    assert retryable(429) and retryable(403)
    assert not retryable(400)
    assert not retryable(401)
    assert not retryable(413)


def test_sandbox_accepts_what_the_official_library_signs() -> None:
    client = pusher.Pusher(app_id="1", key="k", secret="s")
    request = client._pusher_client.trigger.make_request("c", "e", "d")
    verify_request(
        method="POST",
        path=request.path,
        query=request.query_params,
        body=request.body,
        key="k",
        secret="s",
    )


def test_channel_auth_matches_the_official_library() -> None:
    official = pusher.Pusher(app_id="1", key="k", secret="s").authenticate(
        channel="private-x", socket_id="1.2"
    )
    assert official["auth"] == channel_auth(
        key="k", secret="s", socket_id="1.2", channel="private-x"
    )
