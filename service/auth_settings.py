"""How client tokens are verified: an HS256 secret, an identity provider's JWKS, or both.

Kept apart from `settings.py` (which holds it as `Settings.auth`) because its rules are about
tokens: which algorithms exist, which of them a JWKS may serve, what must come together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .environment import ConfigError
from .secret import Secret

#: the asymmetric algorithms a JWKS key may verify, each with the key type (and curve) it
#: needs: a token's `alg` picks its row, and a key of another type is never tried with it
ASYMMETRIC_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
#: the environment variables read here
AUTH_VARIABLES = (
    "AUTH_JWT_SECRET",
    "AUTH_JWKS_URL",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_USER_CLAIM",
    "AUTH_ALGORITHMS",
)
#: the one algorithm AUTH_JWT_SECRET verifies
SECRET_ALGORITHM = "HS256"


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    jwt_secret: Secret | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    user_claim: str = "sub"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    #: one fetch of the JWKS document, connection included
    jwks_timeout_seconds: float = 5.0
    #: a token naming an unknown `kid` re-fetches the document at most this often, so a
    #: flood of made-up `kid`s costs the provider one request per interval
    jwks_min_refetch_seconds: float = 5.0
    #: refresh interval without Cache-Control, and the bounds on what the header may ask
    jwks_default_refresh_seconds: float = 300.0
    jwks_max_refresh_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.jwt_secret is None and self.jwks_url is None:
            raise ConfigError("AUTH_JWT_SECRET is required unless AUTH_JWKS_URL is set")
        if self.jwks_url is None:
            for name, value in (("AUTH_ISSUER", self.issuer), ("AUTH_AUDIENCE", self.audience)):
                if value is not None:
                    raise ConfigError(f"{name} is set but AUTH_JWKS_URL is not")
            return
        for name, value in (("AUTH_ISSUER", self.issuer), ("AUTH_AUDIENCE", self.audience)):
            if value is None:
                raise ConfigError(f"{name} is required with AUTH_JWKS_URL")

    @property
    def methods(self) -> str:
        """For the start-up log line: which tokens this replica accepts."""
        accepted = [SECRET_ALGORITHM] if self.jwt_secret else []
        return ",".join(accepted + (list(self.algorithms) if self.jwks_url else []))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthSettings:
        def value(name: str) -> str | None:
            return env.get(name, "").strip() or None

        secret = value("AUTH_JWT_SECRET")
        jwks_url = value("AUTH_JWKS_URL")
        algorithms = value("AUTH_ALGORITHMS")
        return cls(
            jwt_secret=Secret(secret) if secret else None,
            jwks_url=_http_url("AUTH_JWKS_URL", jwks_url) if jwks_url else None,
            issuer=value("AUTH_ISSUER"),
            audience=value("AUTH_AUDIENCE"),
            user_claim=value("AUTH_USER_CLAIM") or cls.user_claim,
            algorithms=_algorithms(algorithms) if algorithms else cls.algorithms,
        )


def _http_url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw


def _algorithms(raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    for name in names:
        if name not in ASYMMETRIC_ALGORITHMS:
            # HS256 belongs to AUTH_JWT_SECRET alone: an HMAC "key" from a public JWKS would
            # let anyone sign; `none` is never accepted
            accepted = ", ".join(ASYMMETRIC_ALGORITHMS)
            raise ConfigError(f"AUTH_ALGORITHMS: {name!r} is not one of {accepted}")
    if not names:
        raise ConfigError("AUTH_ALGORITHMS must name at least one algorithm")
    return names
