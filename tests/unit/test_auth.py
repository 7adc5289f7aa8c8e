from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from service.errors import Unauthorized
from service.http.auth import TokenVerifier
from service.settings import Secret

SECRET = "unit-test-secret-long-enough-for-hs256-and-hs512-keys-0123456789abcdef"
verifier = TokenVerifier(Secret(SECRET))


def make(
    claims: dict[str, Any],
    key: str = SECRET,
    alg: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


@pytest.mark.parametrize("sub", ["1", 1, "9223372036854775807"])
def test_valid_subjects(sub: int | str) -> None:
    assert verifier.user_id(make({"sub": sub})) == int(sub)


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
def test_invalid_subjects(sub: object) -> None:
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": sub}))


def test_missing_sub() -> None:
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"name": "x"}))


def test_alg_none_and_other_algorithms_are_refused() -> None:
    with pytest.raises(Unauthorized):
        # PyJWT takes "" as "no key" for alg none; its annotation does not admit None
        verifier.user_id(jwt.encode({"sub": "1"}, "", algorithm="none"))
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": "1"}, alg="HS512"))


def test_exp_and_nbf_with_leeway() -> None:
    now = int(time.time())
    assert verifier.user_id(make({"sub": "1", "exp": now - 10})) == 1  # inside the leeway
    with pytest.raises(Unauthorized, match="expired"):
        verifier.user_id(make({"sub": "1", "exp": now - 120}))
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": "1", "nbf": now + 120}))
    assert verifier.user_id(make({"sub": "1", "nbf": now + 10})) == 1
