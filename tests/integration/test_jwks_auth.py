"""Tokens from an identity provider: RS256/ES256 verified with the keys of a real local JWKS
server (tests/jwks_provider.py), issuer and audience checked, keys rotated, the provider down,
made-up `kid`s, algorithm confusion, and the user id in a claim of the operator's choosing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import jwt
import pytest

from ..conftest import Sandbox
from ..helpers import AppClient, MakeClient, assert_error, auth, eventually, sample, scrape
from ..jwks_provider import (
    AUDIENCE,
    ISSUER,
    MISSING,
    Provider,
    bearer,
    hs256_signed_with,
)


async def send(client: AppClient, token: str, recipient: int = 2) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": recipient, "content": "hello"},
        headers=bearer(token),
    )
    return response.status, await response.json()


async def refreshes(client: AppClient, outcome: str) -> float:
    return sample(await scrape(client), "messages_auth_jwks_refresh_total", outcome=outcome)


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
async def test_provider_tokens_send_as_their_user(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection, kid: str
) -> None:
    client = await make_client(auth=provider.settings())
    status, body = await send(client, provider.token("7", kid))
    assert status == 200, body
    assert body["message"]["senderId"] == 7
    assert await db.fetchval("SELECT sender_id FROM messages") == 7
    # a list audience containing ours is accepted too
    status, body = await send(client, provider.token(7, kid, aud=["other", AUDIENCE]))
    assert status == 200, body


def _refused_tokens(provider: Provider) -> dict[str, str]:
    now = int(time.time())
    rsa_pem = provider.keys["rsa-1"].public_pem()
    return {
        "wrong issuer": provider.token(1, "rsa-1", iss="https://evil.test/realms/chat"),
        "no issuer": provider.token(1, "rsa-1", iss=None),
        "wrong audience": provider.token(1, "rsa-1", aud="another-api"),
        "no audience": provider.token(1, "rsa-1", aud=None),
        "expired": provider.token(1, "rsa-1", exp=now - 120),
        "not yet valid": provider.token(1, "ec-1", nbf=now + 120),
        "issued in the future": provider.token(1, "ec-1", iat=now + 600),
        # the algorithm-confusion attack: HS256 keyed with the provider's public key
        "HS256 keyed with the RSA public key": hs256_signed_with(
            rsa_pem, {"sub": "1", "iss": ISSUER, "aud": AUDIENCE}, kid="rsa-1"
        ),
        "alg none": jwt.encode({"sub": "1", "iss": ISSUER, "aud": AUDIENCE}, "", algorithm="none"),
        "RS256 header on the EC key": _resigned(provider, "ec-1", "rsa-1"),
        "RS512 (not in AUTH_ALGORITHMS)": provider.token(1, "rsa-1", alg="RS512"),
        "signed by a key the provider never published": _foreign(provider),
        "its own key in the header (jwk, jku)": _self_signed(provider),
        "not a JWT": "not-a-jwt",
    }


def _resigned(provider: Provider, claimed_kid: str, signing_kid: str) -> str:
    """Signed with `signing_kid`'s key but naming `claimed_kid`, whose key has another type."""
    token = provider.token(1, signing_kid)
    header = {"kid": claimed_kid}
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, provider.keys[signing_kid].private, "RS256", headers=header)


def _self_signed(provider: Provider) -> str:
    """The attacker's key, offered in the token's own header: keys come from the JWKS only."""
    provider.add("attacker", "RSA", publish=False)
    headers = {"jwk": provider.keys["attacker"].jwk(), "jku": "http://evil.test/jwks"}
    return provider.token(1, "attacker", headers=headers)


def _foreign(provider: Provider) -> str:
    provider.add("foreign", "RSA", publish=False)
    token = provider.token(1, "foreign", headers={"kid": "rsa-1"})
    return token


async def test_every_refused_token_is_401_and_stores_nothing(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    # an unknown kid waits for the next refetch allowed: keep that short here
    client = await make_client(auth=provider.settings(jwks_min_refetch_seconds=0.2))
    statuses = {}
    for case, token in _refused_tokens(provider).items():
        status, body = await send(client, token)
        statuses[case] = status
        assert status == 401, (case, body)
        assert_error(body, "unauthorized")
    print("\nrefused tokens:", statuses)
    assert await db.fetchval("SELECT count(*) FROM messages") == 0
    assert sandbox.state.events == []


async def test_the_rsa_public_key_as_hmac_secret_is_refused_without_a_shared_secret(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    """JWKS alone: HS256 belongs to no method, so it is refused before any key is touched."""
    client = await make_client(auth=provider.settings(jwt_secret=None))
    confusion = hs256_signed_with(
        provider.keys["rsa-1"].public_pem(), {"sub": "1", "iss": ISSUER, "aud": AUDIENCE}
    )
    for token in (confusion, jwt.encode({"sub": "1"}, "x" * 32, algorithm="HS256")):
        status, body = await send(client, token)
        assert status == 401, body
    assert (await send(client, provider.token(1, "rsa-1")))[0] == 200


async def test_hs256_dev_tokens_keep_working_next_to_the_provider(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    client = await make_client(auth=provider.settings())
    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "hi"}, headers=auth(1)
    )
    assert response.status == 200
    # a provider token is checked for iss/aud; an HS256 token by the secret alone
    assert (await send(client, provider.token(1, "rsa-1", aud="x")))[0] == 401


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("7", 200),
        (7, 200),
        (MISSING, 401),
        ("seven", 401),
        (0, 401),
        ("0", 401),
        (-3, 401),
        (7.0, 401),
        (1.5, 401),
        (True, 401),
        (None, 401),
    ],
)
async def test_the_user_id_comes_from_the_configured_claim(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection, value: Any, status: int
) -> None:
    client = await make_client(auth=provider.settings(user_claim="user_id"))
    # `sub` is the provider's own (a UUID): the user id is in `user_id`
    token = provider.token(value, "rsa-1", claim="user_id", sub=str(uuid.uuid4()))
    got, body = await send(client, token)
    assert got == status, body
    if status == 200:
        assert body["message"]["senderId"] == 7
    else:
        assert_error(body, "unauthorized")


async def test_channel_auth_and_receipts_follow_the_configured_claim(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    client = await make_client(auth=provider.settings(user_claim="uid"))

    def as_user(user: int) -> dict[str, str]:
        return bearer(provider.token(user, "ec-1", claim="uid", sub="a-uuid"))

    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "hi"}, headers=as_user(1)
    )
    message = (await response.json())["message"]
    channel = f"private-conversation-{message['conversationId']}"
    for user, expected in ((1, 200), (2, 200), (3, 403)):
        response = await client.post(
            "/api/pusher/auth",
            data={"socket_id": "123.456", "channel_name": channel},
            headers=as_user(user),
        )
        assert response.status == expected, user
    receipt = f"/api/messages/{message['id']}/receipt"
    assert (await client.post(receipt, headers=as_user(1))).status == 404  # not the recipient
    assert (await client.post(receipt, headers=as_user(2))).status == 200
    assert await db.fetchval("SELECT received_at IS NOT NULL FROM messages")
    history = f"/api/conversations/{message['conversationId']}/messages"
    assert (await client.get(history, headers=as_user(2))).status == 200
    assert (await client.get(history, headers=as_user(3))).status == 404


async def test_a_flood_of_unknown_kids_costs_the_provider_one_fetch(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    interval = 1.0
    client = await make_client(auth=provider.settings(jwks_min_refetch_seconds=interval))
    assert (await send(client, provider.token(1, "rsa-1")))[0] == 200
    await asyncio.sleep(interval)  # the start-up fetch is now old enough for a refetch
    before = provider.hits
    flood = [provider.token(1, "rsa-1", headers={"kid": f"made-up-{n}"}) for n in range(300)]
    started = time.monotonic()
    results = await asyncio.gather(*(send(client, token) for token in flood))
    elapsed = time.monotonic() - started
    assert {status for status, _ in results} == {401}
    fetches = provider.hits - before
    print(
        f"\nkid flood: {len(flood)} tokens with unknown kids in {elapsed:.2f} s"
        f" -> {fetches} JWKS fetch(es)"
    )
    # one refetch per interval at most, however many requests name a kid nobody published
    assert 1 <= fetches <= 1 + int(elapsed / interval)
    # the known key still works throughout
    assert (await send(client, provider.token(1, "rsa-1", jti="after")))[0] == 200


async def test_a_rotation_is_followed_without_refusing_valid_tokens(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    provider.max_age = 1  # refreshed every 0.75 s (the minimum refetch is lowered below)
    provider.publish("rsa-1")
    client = await make_client(auth=provider.settings(jwks_min_refetch_seconds=0.5))
    timeline: list[str] = []

    async def keys_in_use(stage: str = "") -> float:
        samples = await scrape(client)
        keys = sample(samples, "messages_auth_jwks_keys")
        if stage:
            ok = sample(samples, "messages_auth_jwks_refresh_total", outcome="success")
            failed = sample(samples, "messages_auth_jwks_refresh_total", outcome="error")
            timeline.append(f"{stage}: keys={keys:.0f} refresh success={ok:.0f} error={failed:.0f}")
        return keys

    old = provider.token(1, "rsa-1")
    assert (await send(client, old))[0] == 200
    assert await keys_in_use("rsa-1 published, its token sends") == 1
    # 1. the provider publishes the next key next to the current one, and starts using it
    provider.add("rsa-2", "RSA", publish=False)
    provider.publish("rsa-1", "rsa-2")
    new = provider.token(1, "rsa-2")
    assert (await send(client, new))[0] == 200  # unknown kid: refetched, not refused
    assert (await send(client, old))[0] == 200  # the old key is still published
    assert await keys_in_use("rsa-2 added, both tokens send") == 2
    # 2. the old key is withdrawn: the background refresh follows, no restart
    provider.publish("rsa-2")
    successes = await refreshes(client, "success")
    for _ in range(200):
        if await keys_in_use() == 1:
            break
        await asyncio.sleep(0.05)
    assert await keys_in_use("rsa-1 withdrawn, picked up by the refresher") == 1
    assert await refreshes(client, "success") > successes
    # a token of the withdrawn key is refused even though it verified (and was cached) before
    status, body = await send(client, old)
    assert status == 401, body
    assert (await send(client, new))[0] == 200
    assert await refreshes(client, "error") == 0
    print("\nrotation:\n  " + "\n  ".join(timeline))


async def test_the_provider_down_keeps_cached_keys_and_answers_503_for_unknown_ones(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection, sandbox: Sandbox
) -> None:
    client = await make_client(auth=provider.settings(jwks_min_refetch_seconds=0.2))
    assert (await send(client, provider.token(1, "rsa-1")))[0] == 200
    provider.status = 503
    await asyncio.sleep(0.3)  # past the minimum refetch interval: the unknown kid asks
    # a new token for a cached key: verified with the key in memory
    assert (await send(client, provider.token(1, "ec-1", jti="new")))[0] == 200
    # a key the service has not seen may be a new one the provider cannot tell us about
    hits = provider.hits
    response = await client.post(
        "/api/messages/send",
        json={"recipientId": 2, "content": "hi"},
        headers=bearer(provider.token(1, "rsa-1", headers={"kid": "rsa-next"})),
    )
    assert response.status == 503
    assert_error(await response.json(), "auth_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert provider.hits == hits + 1
    assert await refreshes(client, "error") >= 1
    # readiness is about the database: still ready
    assert (await client.get("/readyz")).status == 200
    assert await db.fetchval("SELECT count(*) FROM messages") == 2
    # the provider is back: the same token now gets its answer from the keys
    provider.status = 200
    await asyncio.sleep(0.3)
    assert response.status == 503
    assert (await send(client, provider.token(1, "rsa-1", headers={"kid": "rsa-next"})))[0] == 401


async def test_a_provider_unreachable_from_the_start(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection, unused_tcp_port: int
) -> None:
    """Nothing listens at the JWKS URL: the service starts and is ready, provider tokens get
    503 (their key may be fine), HS256 tokens are unaffected, the keys' age grows."""
    url = f"http://127.0.0.1:{unused_tcp_port}/certs"
    client = await make_client(auth=provider.settings(jwks_url=url, jwks_timeout_seconds=1))
    assert (await client.get("/readyz")).status == 200
    for kid in ("rsa-1", "ec-1"):
        status, body = await send(client, provider.token(1, kid))
        assert status == 503, body
        assert_error(body, "auth_unavailable")
    response = await client.post(
        "/api/messages/send", json={"recipientId": 2, "content": "hi"}, headers=auth(1)
    )
    assert response.status == 200
    samples = await scrape(client)
    assert sample(samples, "messages_auth_jwks_refresh_total", outcome="error") >= 1
    assert sample(samples, "messages_auth_jwks_refresh_total", outcome="success") == 0
    assert sample(samples, "messages_auth_jwks_keys") == 0
    age = sample(samples, "messages_auth_jwks_keys_age_seconds")
    await asyncio.sleep(0.2)
    assert sample(await scrape(client), "messages_auth_jwks_keys_age_seconds") > age


async def test_unusable_keys_in_the_document_are_ignored(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    """A symmetric key in a public document would let anyone sign: never used, nor an
    encryption key, nor junk; the signing keys next to them still work."""
    provider.extra = [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0", "alg": "HS256"},
        {**provider.keys["rsa-1"].jwk(), "kid": "enc-1", "use": "enc"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        {"kid": "no-kty"},
    ]
    client = await make_client(auth=provider.settings(jwt_secret=None))
    forged = jwt.encode({"sub": "1", "iss": ISSUER, "aud": AUDIENCE}, "s" * 32, "HS256")
    assert (await send(client, forged))[0] == 401
    encryption_only = provider.token(1, "rsa-1", headers={"kid": "enc-1"})
    assert (await send(client, encryption_only))[0] == 401
    assert (await send(client, provider.token(1, "rsa-1")))[0] == 200
    assert sample(await scrape(client), "messages_auth_jwks_keys") == 2


async def test_a_document_without_usable_keys_is_a_failed_refresh(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    provider.publish()
    provider.extra = [{"kty": "oct", "k": "c2VjcmV0"}]
    client = await make_client(auth=provider.settings())
    status, body = await send(client, provider.token(1, "rsa-1"))
    assert status == 503, body
    await eventually(lambda: provider.hits >= 1)
    assert await refreshes(client, "error") >= 1


JWKS_SERIES = (
    "messages_auth_jwks_refresh_total",
    "messages_auth_jwks_keys_age_seconds",
    "messages_auth_jwks_keys",
)


async def test_the_provider_metrics_exist_from_start_up_and_only_with_a_provider(
    make_client: MakeClient, provider: Provider, db: asyncpg.Connection
) -> None:
    without = await scrape(await make_client())
    assert not [name for name, _ in without if name.startswith("messages_auth_jwks")]
    provider.status = 503  # even before any fetch succeeded, every series is there
    samples = await scrape(await make_client(auth=provider.settings()))
    for outcome in ("success", "error"):
        assert sample(samples, "messages_auth_jwks_refresh_total", outcome=outcome) is not None
    for name in JWKS_SERIES[1:]:
        assert sample(samples, name) is not None, name
