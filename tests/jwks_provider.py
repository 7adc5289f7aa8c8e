"""A local identity provider for the tests: an aiohttp server publishing a JWKS document of
RSA and EC keys made with `cryptography`, and tokens signed with them. Keys can be
published and withdrawn mid-test (rotation), the document can fail (the provider down), and
every fetch is counted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.settings import AuthSettings, Secret

from .helpers import JWT_SECRET

ISSUER = "https://idp.test/realms/chat"
AUDIENCE = "chat-api"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class SigningKey:
    kid: str
    private: PrivateKey
    alg: str

    def jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            public = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class Provider:
    """`url` serves the JWKS document of the `published` keys."""

    server: TestServer | None = None
    keys: dict[str, SigningKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    hits: int = 0
    #: the document's status: 200, or e.g. 503 while "down"
    status: int = 200
    max_age: int | None = 300
    #: extra JWKs served as they are (a symmetric key, an encryption key, junk)
    extra: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/realms/chat/protocol/openid-connect/certs"))

    def add(self, kid: str, kind: Literal["RSA", "EC"] = "RSA", *, publish: bool = True) -> str:
        if kind == "RSA":
            self.keys[kid] = SigningKey(kid, rsa.generate_private_key(65537, 2048), "RS256")
        else:
            self.keys[kid] = SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")
        if publish:
            self.published.append(kid)
        return kid

    def publish(self, *kids: str) -> None:
        self.published = list(kids)

    def document(self) -> dict[str, Any]:
        return {"keys": [self.keys[kid].jwk() for kid in self.published] + self.extra}

    def token(
        self,
        user: object,
        kid: str,
        *,
        claim: str = "sub",
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = self.keys[kid]
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        if user is not MISSING:
            payload[claim] = user
        for name, value in claims.items():  # None leaves the claim out
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        header = {"kid": kid, **(headers or {})}
        return jwt.encode(payload, key.private, algorithm=alg or key.alg, headers=header)

    def settings(self, **overrides: Any) -> AuthSettings:
        """The service's auth settings for this provider, HS256 dev tokens accepted too."""
        defaults: dict[str, Any] = {
            "jwt_secret": Secret(JWT_SECRET),
            "jwks_url": self.url,
            "issuer": ISSUER,
            "audience": AUDIENCE,
        }
        return AuthSettings(**{**defaults, **overrides})

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.status != 200:
            return web.json_response({"error": "unavailable"}, status=self.status)
        headers = {} if self.max_age is None else {"Cache-Control": f"max-age={self.max_age}"}
        return web.json_response(self.document(), headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/realms/chat/protocol/openid-connect/certs", self._serve)
        return app


#: `Provider.token(MISSING, ...)`: a token without the user claim
MISSING = object()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hs256_signed_with(secret: bytes, claims: dict[str, Any], kid: str | None = None) -> str:
    """An HS256 token whose HMAC key is `secret`, built by hand: PyJWT refuses to sign with a
    PEM public key, which is exactly the algorithm-confusion attack this token performs."""

    def part(value: dict[str, Any]) -> bytes:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = part(header) + b"." + part(claims)
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()
