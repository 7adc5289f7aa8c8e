"""Bad input: the contract's JSON error, the right status, nothing stored, nothing triggered."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import jwt
import pytest

from ..conftest import Sandbox
from ..helpers import JWT_SECRET, AppClient, assert_error, auth, token

SEND = "/api/messages/send"
GOOD = {"recipientId": 2, "content": "hi"}


def _raw(body: object) -> bytes:
    return json.dumps(body).encode()


def _none_alg_token(user_id: int) -> str:
    # PyJWT takes "" as "no key" for alg none; its annotation does not admit None
    return jwt.encode({"sub": str(user_id)}, key="", algorithm="none")


CASES = [
    # (id, headers, body bytes, expected status, expected code)
    ("no token", {}, _raw(GOOD), 401, "unauthorized"),
    ("not bearer", {"Authorization": "Basic abc"}, _raw(GOOD), 401, "unauthorized"),
    ("garbage token", {"Authorization": "Bearer nope"}, _raw(GOOD), 401, "unauthorized"),
    (
        "wrong secret",
        {"Authorization": f"Bearer {token(1, secret='x' * 40)}"},
        _raw(GOOD),
        401,
        "unauthorized",
    ),
    ("expired", auth(1, exp=int(time.time()) - 3600), _raw(GOOD), 401, "unauthorized"),
    (
        "alg none",
        {"Authorization": f"Bearer {_none_alg_token(1)}"},
        _raw(GOOD),
        401,
        "unauthorized",
    ),
    ("sub zero", auth(0), _raw(GOOD), 401, "unauthorized"),
    ("sub negative", auth(-4), _raw(GOOD), 401, "unauthorized"),
    ("sub not a number", auth("alice"), _raw(GOOD), 401, "unauthorized"),
    (
        "not json content type",
        {**auth(1), "Content-Type": "text/plain"},
        _raw(GOOD),
        415,
        "unsupported_media_type",
    ),
    (
        "malformed json",
        {**auth(1), "Content-Type": "application/json"},
        b'{"recipientId": 2,',
        400,
        "malformed_json",
    ),
    (
        "not utf-8",
        {**auth(1), "Content-Type": "application/json"},
        b'{"content": "\xff"}',
        400,
        "malformed_json",
    ),
    (
        "json array",
        {**auth(1), "Content-Type": "application/json"},
        _raw([GOOD]),
        422,
        "validation_failed",
    ),
    ("missing recipient", auth(1), _raw({"content": "hi"}), 422, "validation_failed"),
    (
        "recipient as string",
        auth(1),
        _raw({"recipientId": "2", "content": "hi"}),
        422,
        "validation_failed",
    ),
    (
        "recipient zero",
        auth(1),
        _raw({"recipientId": 0, "content": "hi"}),
        422,
        "validation_failed",
    ),
    (
        "recipient bool",
        auth(1),
        _raw({"recipientId": True, "content": "hi"}),
        422,
        "validation_failed",
    ),
    (
        "recipient too big",
        auth(1),
        _raw({"recipientId": 2**64, "content": "hi"}),
        422,
        "validation_failed",
    ),
    ("recipient is sender", auth(2), _raw(GOOD), 422, "validation_failed"),
    ("missing content", auth(1), _raw({"recipientId": 2}), 422, "validation_failed"),
    (
        "content not a string",
        auth(1),
        _raw({"recipientId": 2, "content": 5}),
        422,
        "validation_failed",
    ),
    (
        "blank content",
        auth(1),
        _raw({"recipientId": 2, "content": "  \n\t "}),
        422,
        "validation_failed",
    ),
    (
        "content too long",
        auth(1),
        _raw({"recipientId": 2, "content": "x" * 2001}),
        422,
        "validation_failed",
    ),
    (
        "NUL in content",
        auth(1),
        _raw({"recipientId": 2, "content": "a\u0000b"}),
        422,
        "validation_failed",
    ),
    (
        "escape in content",
        auth(1),
        _raw({"recipientId": 2, "content": "a\u001bb"}),
        422,
        "validation_failed",
    ),
    ("bad socket id", auth(1), _raw({**GOOD, "socketId": "abc"}), 422, "validation_failed"),
    (
        "NUL in client message id",
        auth(1),
        _raw({**GOOD, "clientMessageId": "a\u0000"}),
        422,
        "validation_failed",
    ),
    (
        "lone surrogate in content",
        auth(1),
        _raw({**GOOD, "content": "a\ud800"}),
        422,
        "validation_failed",
    ),
    (
        "empty client message id",
        auth(1),
        _raw({**GOOD, "clientMessageId": ""}),
        422,
        "validation_failed",
    ),
    (
        "long client message id",
        auth(1),
        _raw({**GOOD, "clientMessageId": "c" * 129}),
        422,
        "validation_failed",
    ),
    ("someone else's senderId", auth(1), _raw({**GOOD, "senderId": 3}), 403, "forbidden"),
    (
        "body over the cap",
        auth(1),
        _raw({**GOOD, "content": "x" * 70_000}),
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_send_is_refused_and_leaves_no_trace(
    client: AppClient,
    db: asyncpg.Connection,
    sandbox: Sandbox,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    headers = {"Content-Type": "application/json", **headers}
    response = await client.post(SEND, data=body, headers=headers)
    assert response.status == status
    assert response.content_type == "application/json"
    assert_error(await response.json(), code)
    assert await db.fetchval("SELECT count(*) FROM messages") == 0
    assert await db.fetchval("SELECT count(*) FROM conversations") == 0
    await asyncio.sleep(0.05)
    assert sandbox.state.trigger_calls == []


async def test_validation_error_names_the_field(client: AppClient) -> None:
    response = await client.post(SEND, json={"recipientId": 2, "content": ""}, headers=auth(1))
    body = await response.json()
    assert body["error"]["details"][0]["field"] == "content"
    assert body["error"]["message"].startswith("content:")


async def test_unknown_route_and_wrong_method_are_json_errors(client: AppClient) -> None:
    response = await client.get("/nope")
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    response = await client.get(SEND)
    assert response.status == 405
    assert_error(await response.json(), "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_expired_token_within_leeway_is_accepted(client: AppClient) -> None:
    response = await client.post(SEND, json=GOOD, headers=auth(1, exp=int(time.time()) - 5))
    assert response.status == 200


async def test_numeric_sub_is_accepted(client: AppClient) -> None:
    numeric = jwt.encode({"sub": 1}, JWT_SECRET, algorithm="HS256")
    response = await client.post(SEND, json=GOOD, headers={"Authorization": f"Bearer {numeric}"})
    assert response.status == 200
    assert (await response.json())["message"]["senderId"] == 1
