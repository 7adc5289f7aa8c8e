from __future__ import annotations

import time

import jwt
import pytest

from service.errors import Unauthorized
from service.http.auth import TokenVerifier
from service.settings import Secret

SECRET = "unit-test-secret-long-enough-for-hs256-and-hs512-keys-0123456789abcdef"
verifier = TokenVerifier(Secret(SECRET))


def make(claims, key=SECRET, alg="HS256", headers=None):
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


@pytest.mark.parametrize("sub", ["1", 1, "9223372036854775807"])
def test_valid_subjects(sub):
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
def test_invalid_subjects(sub):
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": sub}))


def test_missing_sub():
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"name": "x"}))


def test_alg_none_and_other_algorithms_are_refused():
    with pytest.raises(Unauthorized):
        verifier.user_id(jwt.encode({"sub": "1"}, None, algorithm="none"))
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": "1"}, alg="HS512"))


def test_exp_and_nbf_with_leeway():
    now = int(time.time())
    assert verifier.user_id(make({"sub": "1", "exp": now - 10})) == 1  # inside the leeway
    with pytest.raises(Unauthorized, match="expired"):
        verifier.user_id(make({"sub": "1", "exp": now - 120}))
    with pytest.raises(Unauthorized):
        verifier.user_id(make({"sub": "1", "nbf": now + 120}))
    assert verifier.user_id(make({"sub": "1", "nbf": now + 10})) == 1
