"""A JWKS document's contents: which of its keys may verify signatures, and how long the
provider says the document may be cached."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from jwt import PyJWK, PyJWTError

from ..auth_settings import ASYMMETRIC_ALGORITHMS

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


class JwksUnavailable(Exception):
    """The document could not be fetched or holds no usable signing key."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    jwk: PyJWK
    kty: str
    crv: str | None
    #: the JWK's own `alg`, when it names one
    alg: str | None
    data: str  # the JWK as canonical JSON: an unchanged key keeps its object across fetches

    def fits(self, alg: str) -> bool:
        """True when this key may verify a token signed with `alg`: the JWK's `alg` (if any)
        is that one, and its type and curve are the ones the algorithm needs."""
        needed = ASYMMETRIC_ALGORITHMS.get(alg)
        if needed is None or (self.alg is not None and self.alg != alg):
            return False
        kty, crv = needed
        return self.kty == kty and (crv is None or self.crv == crv)


def signing_keys(document: object) -> list[SigningKey]:
    """The document's keys that may verify signatures: asymmetric (a symmetric `oct` key in
    a public document would let anyone sign), not marked for encryption, parsed by PyJWT."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable('the document has no "keys" list')
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kty, alg, kid = jwk.get("kty"), jwk.get("alg"), jwk.get("kid")
        if kty not in ("RSA", "EC", "OKP") or (
            alg is not None and alg not in ASYMMETRIC_ALGORITHMS
        ):
            continue
        try:
            parsed = PyJWK(jwk)
        except PyJWTError:
            continue
        crv = jwk.get("crv")
        keys.append(
            SigningKey(
                kid=kid if isinstance(kid, str) else None,
                jwk=parsed,
                kty=kty,
                crv=crv if isinstance(crv, str) else None,
                alg=alg,
                data=json.dumps(jwk, sort_keys=True),
            )
        )
    if not keys:
        raise JwksUnavailable("the document has no usable signing key")
    return keys


def max_age(cache_control: str) -> float | None:
    # one directive of one header: a parser library would be more code than this
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None
