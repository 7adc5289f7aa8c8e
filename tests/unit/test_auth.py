from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from service.auth.tokens import TokenVerifier
from service.errors import Unauthorized
from service.settings import AuthSettings, Secret

SECRET = "unit-test-secret-long-enough-for-hs256-and-hs512-keys-0123456789abcdef"
verifier = TokenVerifier(AuthSettings(jwt_secret=Secret(SECRET)))


def make(
    claims: dict[str, Any],
    key: str = SECRET,
    alg: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


@pytest.mark.parametrize("sub", ["1", 1, "9223372036854775807"])
async def test_valid_subjects(sub: int | str) -> None:
    assert await verifier.user_id(make({"sub": sub})) == int(sub)


@pytest.mark.parametrize(
    "sub",
    [
        "0",
        0,
        -1,
        "-1",
        "1.5",
        1.5,
        True,
        "",
        "abc",
        "９",  # noqa: RUF001 - a non-ASCII digit must not pass
        2**63,
        None,
        [1],
    ],
)
async def test_invalid_subjects(sub: object) -> None:
    with pytest.raises(Unauthorized):
        await verifier.user_id(make({"sub": sub}))


async def test_missing_sub() -> None:
    with pytest.raises(Unauthorized):
        await verifier.user_id(make({"name": "x"}))


async def test_alg_none_and_other_algorithms_are_refused() -> None:
    with pytest.raises(Unauthorized):
        # PyJWT takes "" as "no key" for alg none; its annotation does not admit None
        await verifier.user_id(jwt.encode({"sub": "1"}, "", algorithm="none"))
    with pytest.raises(Unauthorized):
        await verifier.user_id(make({"sub": "1"}, alg="HS512"))


async def test_exp_and_nbf_with_leeway() -> None:
    now = int(time.time())
    assert await verifier.user_id(make({"sub": "1", "exp": now - 10})) == 1  # inside the leeway
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.user_id(make({"sub": "1", "exp": now - 120}))
    with pytest.raises(Unauthorized):
        await verifier.user_id(make({"sub": "1", "nbf": now + 120}))
    assert await verifier.user_id(make({"sub": "1", "nbf": now + 10})) == 1
