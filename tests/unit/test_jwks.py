"""The JWKS document's parts that need no server: Cache-Control, which keys count."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from service.auth.keys import JwksUnavailable, max_age, signing_keys


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=3600, must-revalidate", 3600),
        ("max-age=60", 60),
        ('MAX-AGE="120"', 120),
        ("no-cache", 0),
        ("private, no-store", 0),
        ("s-maxage=10", None),
        ("", None),
    ],
)
def test_max_age(header: str, seconds: float | None) -> None:
    assert max_age(header) == seconds


def _rsa() -> dict[str, Any]:
    return RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)


def _ec(curve: ec.EllipticCurve) -> dict[str, Any]:
    return ECAlgorithm.to_jwk(ec.generate_private_key(curve).public_key(), as_dict=True)


def test_each_key_fits_only_the_algorithms_of_its_type_and_curve() -> None:
    okp = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate().public_key(), as_dict=True)
    document = {
        "keys": [
            {**_rsa(), "kid": "rsa"},
            {**_rsa(), "kid": "rsa-ps", "alg": "PS256"},
            {**_ec(ec.SECP256R1()), "kid": "p256"},
            {**_ec(ec.SECP384R1()), "kid": "p384"},
            {**okp, "kid": "ed"},
        ]
    }
    fits = {
        key.kid: {a for a in ("RS256", "PS256", "ES256", "ES384", "EdDSA") if key.fits(a)}
        for key in signing_keys(document)
    }
    assert fits == {
        "rsa": {"RS256", "PS256"},
        "rsa-ps": {"PS256"},  # the JWK's own alg binds it
        "p256": {"ES256"},
        "p384": {"ES384"},
        "ed": {"EdDSA"},
    }
    assert not any(key.fits("HS256") or key.fits("none") for key in signing_keys(document))


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"keys": "x"},
        {"keys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},  # a symmetric key is never a signing key
        {"keys": [{**_rsa(), "use": "enc"}]},
        {"keys": [{**_rsa(), "alg": "RSA-OAEP"}]},
    ],
)
def test_documents_without_a_usable_signing_key(document: object) -> None:
    with pytest.raises(JwksUnavailable):
        signing_keys(document)
