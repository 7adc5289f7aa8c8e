"""Client bearer tokens: HS256 with AUTH_JWT_SECRET, RS256/ES256/… with the provider's JWKS.

A token's header `alg` picks the one method that algorithm belongs to, before any key is
touched: HS256 is only ever checked against the shared secret, an asymmetric algorithm only
against a published key of the matching type, `none` and anything else never. So an RS/ES
public key is never used as an HMAC secret (the algorithm-confusion attack)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from ..auth_settings import SECRET_ALGORITHM, AuthSettings
from ..errors import AuthUnavailable, Unauthorized
from ..ids import is_valid_id
from .jwks import JwksKeys
from .keys import JwksUnavailable, SigningKey

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
    key: SigningKey | None  # None: verified with the shared secret


class TokenVerifier:
    """Verifies client JWTs and returns the user id in AUTH_USER_CLAIM.

    A client sends the same token with every request, so tokens that verified are remembered
    (bounded LRU, keyed by the whole token string) and only their time claims, and that their
    key is still published, are checked again: signature checking was 10 % of a send's CPU
    time when profiled."""

    def __init__(
        self, settings: AuthSettings, jwks: JwksKeys | None = None, *, cache_size: int = 10_000
    ) -> None:
        self._settings = settings
        self._secret = settings.jwt_secret
        self._jwks = jwks
        self._claim = settings.user_claim
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size

    async def authenticate(self, request: web.Request) -> int:
        return await self.user_id(bearer_token(request))

    async def user_id(self, token: str) -> int:
        now = time.time()
        known = self._cache.get(token)
        if known is not None:
            if known.not_before <= now <= known.expires and self._still_published(known.key):
                self._cache.move_to_end(token)
                return known.user_id
            del self._cache[token]  # expired, not yet valid or its key withdrawn: verify afresh
        key, claims = await self._verify(token)
        user_id = positive_user_id(claims.get(self._claim))
        self._remember(token, user_id, claims, key)
        return user_id

    def _still_published(self, key: SigningKey | None) -> bool:
        return key is None or (self._jwks is not None and self._jwks.holds(key))

    async def _verify(self, token: str) -> tuple[SigningKey | None, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("The token is invalid.") from None
        alg = header.get("alg")
        if alg == SECRET_ALGORITHM and self._secret is not None:
            return None, self._decode(token, self._secret.reveal(), alg)
        if self._jwks is not None and alg in self._settings.algorithms:
            kid = header.get("kid")
            if kid is not None and not isinstance(kid, str):
                raise Unauthorized("The token is invalid.")
            key = await self._key(kid, alg)
            return key, self._decode(
                token,
                key.jwk.key,
                alg,
                issuer=self._settings.issuer,
                audience=self._settings.audience,
            )
        raise Unauthorized("The token's algorithm is not accepted.")

    async def _key(self, kid: str | None, alg: str) -> SigningKey:
        assert self._jwks is not None
        try:
            key = await self._jwks.key(kid, alg)
        except JwksUnavailable:
            raise AuthUnavailable(self._settings.jwks_min_refetch_seconds) from None
        if key is None:
            raise Unauthorized("The token's signing key is unknown.")
        if not key.fits(alg):
            raise Unauthorized("The token's signing key does not match its algorithm.")
        return key

    def _decode(
        self,
        token: str,
        key: Any,
        alg: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],  # the one the method owns; never "none"
                issuer=issuer,
                audience=audience,
                leeway=LEEWAY_SECONDS,
                # the contract allows a numeric `sub`; PyJWT would insist on a string
                options={"require": [self._claim], "verify_sub": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("The token is not valid yet.") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The token's issuer is not accepted.") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The token's audience is not accepted.") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"The token has no {error.claim!r} claim.") from None
        except jwt.PyJWTError:  # bad signature, malformed, a key PyJWT refuses for `alg`
            raise Unauthorized("The token is invalid.") from None
        return claims

    def _remember(
        self, token: str, user_id: int, claims: dict[str, Any], key: SigningKey | None
    ) -> None:
        exp, nbf = claims.get("exp"), claims.get("nbf")
        self._cache[token] = _Verified(
            user_id,
            float(exp) + LEEWAY_SECONDS if isinstance(exp, int | float) else math.inf,
            float(nbf) - LEEWAY_SECONDS if isinstance(nbf, int | float) else -math.inf,
            key,
        )
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def positive_user_id(value: object) -> int:
    # The contract allows the user id as a string or a number; bool is an int in Python,
    # refuse it, and a float (1.0) is not an integer id.
    if isinstance(value, bool):
        raise Unauthorized("The token's user claim is not a user id.")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and is_valid_id(value):
        return value
    raise Unauthorized("The token's user claim is not a user id.")
