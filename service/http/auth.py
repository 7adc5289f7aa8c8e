"""Bearer tokens: HS256 JWTs for users, a shared admin token for the admin endpoints."""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt
from aiohttp import web

from ..errors import Unauthorized
from ..ids import is_valid_id
from ..settings import Secret

#: clock skew tolerated on `exp` and `nbf`
LEEWAY_SECONDS = 30


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required (Authorization: Bearer <token>).")
    return token.strip()


@dataclass(frozen=True, slots=True)
class _Verified:
    user_id: int
    expires: float  # exp + leeway (inf without exp)
    not_before: float  # nbf - leeway (-inf without nbf)


class TokenVerifier:
    """Verifies client JWTs and returns the user id in `sub`.

    A client sends the same token with every request, so tokens that verified are remembered
    (bounded LRU, keyed by the whole token string) and only their time claims are checked again:
    signature checking was 10 % of a send's CPU time when profiled."""

    def __init__(self, secret: Secret, *, cache_size: int = 10_000) -> None:
        self._secret = secret
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size

    def user_id(self, token: str) -> int:
        now = time.time()
        known = self._cache.get(token)
        if known is not None:
            if known.not_before <= now <= known.expires:
                self._cache.move_to_end(token)
                return known.user_id
            del self._cache[token]  # expired (or not yet valid): verify afresh for the error
        claims = self._decode(token)
        user_id = _positive_user_id(claims["sub"])
        self._remember(token, user_id, claims)
        return user_id

    def _remember(self, token: str, user_id: int, claims: dict[str, object]) -> None:
        exp, nbf = claims.get("exp"), claims.get("nbf")
        self._cache[token] = _Verified(
            user_id,
            float(exp) + LEEWAY_SECONDS if isinstance(exp, int | float) else math.inf,
            float(nbf) - LEEWAY_SECONDS if isinstance(nbf, int | float) else -math.inf,
        )
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _decode(self, token: str) -> dict[str, object]:
        try:
            claims = jwt.decode(
                token,
                self._secret.reveal(),
                algorithms=["HS256"],  # never "none", never an algorithm the token chooses
                leeway=LEEWAY_SECONDS,
                options={"require": ["sub"], "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The token is invalid.") from None
        return claims

    def authenticate(self, request: web.Request) -> int:
        return self.user_id(bearer_token(request))


def _positive_user_id(sub: object) -> int:
    # The contract allows `sub` as a string or a number; bool is an int in Python, refuse it.
    if isinstance(sub, bool):
        raise Unauthorized("The token's subject is not a user id.")
    if isinstance(sub, str) and sub.isascii() and sub.isdigit():
        sub = int(sub)
    if isinstance(sub, int) and is_valid_id(sub):
        return sub
    raise Unauthorized("The token's subject is not a user id.")


def check_admin_token(request: web.Request, admin_token: Secret | None) -> None:
    """Constant-time comparison against ADMIN_TOKEN; unset means the admin API is disabled."""
    if admin_token is None:
        raise Unauthorized("The admin API is disabled (ADMIN_TOKEN is not set).")
    given = bearer_token(request).encode()
    if not hmac.compare_digest(given, admin_token.reveal().encode()):
        raise Unauthorized("The admin token is invalid.")
