"""Pusher's request signature and private-channel auth, checked the way Pusher checks them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

#: Pusher refuses requests whose auth_timestamp is further than this from its clock.
MAX_CLOCK_SKEW_SECONDS = 600


class SignatureError(Exception):
    """The request is not signed by the app's secret (Pusher answers 401)."""


def hmac_sha256(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_request(
    *, method: str, path: str, query: Mapping[str, str], body: bytes, key: str, secret: str
) -> None:
    """HMAC-SHA256 over `METHOD\\nPATH\\n` + the sorted `k=v` query (all but auth_signature)."""
    if query.get("auth_key") != key:
        raise SignatureError("Unknown auth_key")
    if query.get("auth_version") != "1.0":
        raise SignatureError("auth_version must be 1.0")
    try:
        timestamp = int(query.get("auth_timestamp", ""))
    except ValueError:
        raise SignatureError("auth_timestamp is missing or not an integer") from None
    if abs(time.time() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureError("Timestamp expired: the auth_timestamp is too far from now")
    if body and query.get("body_md5") != hashlib.md5(body).hexdigest():
        raise SignatureError("body_md5 does not match the body")
    signed = "&".join(
        f"{name.lower()}={query[name]}" for name in sorted(query) if name != "auth_signature"
    )
    expected = hmac_sha256(secret, f"{method}\n{path}\n{signed}")
    if not hmac.compare_digest(expected, query.get("auth_signature", "")):
        raise SignatureError(f"Invalid signature: you should have sent HmacSHA256Hex({signed!r})")


def channel_auth(*, key: str, secret: str, socket_id: str, channel: str) -> str:
    """The `auth` value a private-channel subscription must carry."""
    return f"{key}:{hmac_sha256(secret, f'{socket_id}:{channel}')}"
