"""The sandbox Pusher server, proven against the official `pusher` library's own HTTP client."""

from __future__ import annotations

import hashlib
import json
import time

import aiohttp
import pusher
import pusher.aiohttp
import pytest
from pusher.signature import sign

from service.sandbox import Fault

from ..conftest import Sandbox


def official(sandbox: Sandbox, secret: str | None = None, key: str | None = None) -> pusher.Pusher:
    config = sandbox.state.config
    return pusher.Pusher(
        app_id=config.app_id,
        key=key or config.key,
        secret=secret or config.secret,
        host="127.0.0.1",
        port=sandbox.port,
        ssl=False,
        backend=pusher.aiohttp.AsyncIOBackend,
    )


async def test_official_trigger_is_accepted(sandbox: Sandbox) -> None:
    result = await official(sandbox).trigger(
        ["private-a", "public-b"], "new-message", {"x": 1}, socket_id="1.2"
    )
    assert result == {}
    assert [(e.channel, e.name, json.loads(e.data), e.socket_id) for e in sandbox.state.events] == [
        ("private-a", "new-message", {"x": 1}, "1.2"),
        ("public-b", "new-message", {"x": 1}, "1.2"),
    ]


async def test_official_batch_is_accepted(sandbox: Sandbox) -> None:
    batch = [{"channel": f"c{n}", "name": "e", "data": str(n)} for n in range(10)]
    await official(sandbox).trigger_batch(batch)
    assert [e.data for e in sandbox.state.events] == [str(n) for n in range(10)]
    assert sandbox.state.calls[-1].events == 10


async def test_wrong_secret_is_401(sandbox: Sandbox) -> None:
    with pytest.raises(pusher.errors.PusherBadAuth):
        await official(sandbox, secret="wrong").trigger("c", "e", "d")
    assert sandbox.state.events == []


async def test_unknown_key_is_401(sandbox: Sandbox) -> None:
    with pytest.raises(pusher.errors.PusherBadAuth):
        await official(sandbox, key="other").trigger("c", "e", "d")


async def test_more_than_ten_events_in_a_batch_is_400(sandbox: Sandbox) -> None:
    batch = [{"channel": "c", "name": "e", "data": "x"} for _ in range(11)]
    with pytest.raises(pusher.errors.PusherBadRequest):
        await official(sandbox).trigger_batch(batch)
    assert sandbox.state.events == []


async def test_data_over_10240_bytes_is_413(sandbox: Sandbox) -> None:
    # 3,414 three-byte characters: 10,242 bytes, though only 3,414 characters
    with pytest.raises(pusher.errors.PusherBadStatus, match="413"):
        await official(sandbox).trigger("c", "e", "€" * 3414)
    await official(sandbox).trigger("c", "e", "€" * 3413)  # 10,239 bytes is fine
    assert len(sandbox.state.events) == 1


async def test_official_channels_probe(sandbox: Sandbox) -> None:
    assert await official(sandbox).channels_info() == {"channels": {}}


def _signed_post(
    sandbox: Sandbox,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    md5: str | None = None,
) -> dict[str, str]:
    config = sandbox.state.config
    query = {
        "auth_key": config.key,
        "auth_timestamp": str(timestamp or int(time.time())),
        "auth_version": "1.0",
        "body_md5": md5 or hashlib.md5(body).hexdigest(),
    }
    to_sign = "&".join(f"{k}={query[k]}" for k in sorted(query))
    query["auth_signature"] = sign(config.secret, f"POST\n{path}\n{to_sign}")
    return query


async def _post(
    sandbox: Sandbox,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    md5: str | None = None,
) -> int:
    query = _signed_post(sandbox, path, body, timestamp=timestamp, md5=md5)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{sandbox.port}{path}", params=query, data=body) as response,
    ):
        return response.status


async def test_raw_signed_request_limits(sandbox: Sandbox) -> None:
    path = "/apps/1/events"
    event = {"name": "e", "data": "d"}
    assert await _post(sandbox, path, json.dumps({**event, "channels": ["ok"]}).encode()) == 200
    too_many = json.dumps({**event, "channels": [f"c{n}" for n in range(101)]}).encode()
    assert await _post(sandbox, path, too_many) == 400
    assert await _post(sandbox, path, json.dumps({**event, "channels": []}).encode()) == 400
    assert (
        await _post(sandbox, path, json.dumps({**event, "channels": ["bad name!"]}).encode()) == 400
    )
    assert (
        await _post(sandbox, path, json.dumps({**event, "channels": ["x" * 201]}).encode()) == 400
    )
    assert len(sandbox.state.events) == 1


async def test_tampered_body_and_old_timestamp_are_401(sandbox: Sandbox) -> None:
    path = "/apps/1/events"
    body = json.dumps({"name": "e", "data": "d", "channels": ["c"]}).encode()
    assert await _post(sandbox, path, body, md5="0" * 32) == 401
    assert await _post(sandbox, path, body, timestamp=int(time.time()) - 3600) == 401
    assert sandbox.state.events == []


async def test_injected_status_applies_for_n_calls(sandbox: Sandbox) -> None:
    sandbox.state.faults.set(Fault("status", status=503, calls=2))
    client = official(sandbox)
    for _ in range(2):
        with pytest.raises(pusher.errors.PusherBadStatus, match="503"):
            await client.trigger("c", "e", "d")
    await client.trigger("c", "e", "d")
    assert len(sandbox.state.events) == 1


async def test_dropped_connection(sandbox: Sandbox) -> None:
    sandbox.state.faults.set(Fault("drop", calls=1))
    with pytest.raises(aiohttp.ClientError):
        await official(sandbox).trigger("c", "e", "d")
    assert sandbox.state.events == []


async def test_control_api_sets_faults_and_lists_events(sandbox: Sandbox) -> None:
    base = f"http://127.0.0.1:{sandbox.port}/_sandbox"
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/faults", json={"kind": "status", "status": 500, "calls": 1}
        ) as r:
            assert r.status == 200
        with pytest.raises(pusher.errors.PusherBadStatus):
            await official(sandbox).trigger("c", "e", "d")
        await official(sandbox).trigger("c", "e", "d")
        async with session.get(f"{base}/events") as r:
            listing = await r.json()
    assert [c["status"] for c in listing["calls"]] == [500, 200]
    assert len(listing["events"]) == 1
