"""`python -m bench.tokens`: what verifying a client token costs, by method, side by side in
one run: a token seen for the first time (signature checked: HS256 with the shared secret,
RS256 / ES256 with keys fetched from a real local JWKS endpoint) and a token seen before
(the verified-token cache: time claims, and that its key is still published).

CPU time per verification in this process, the median of `--rounds` rounds of `--tokens`
tokens each; no HTTP in the measured loop (the send path adds the same on top of each)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.auth.jwks import JwksKeys
from service.auth.tokens import TokenVerifier
from service.settings import AuthSettings, Secret

SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"
ISSUER, AUDIENCE = "https://idp.bench/realms/chat", "chat-api"


async def _verifier(session: aiohttp.ClientSession, url: str) -> TokenVerifier:
    settings = AuthSettings(
        jwt_secret=Secret(SECRET), jwks_url=url, issuer=ISSUER, audience=AUDIENCE
    )
    keys = JwksKeys(settings, session)
    assert await keys.refresh(), keys.last_error
    return TokenVerifier(settings, keys, cache_size=1_000_000)


async def _per_token(verify: TokenVerifier, tokens: list[str]) -> float:
    started = time.process_time()
    for token in tokens:
        await verify.user_id(token)
    return (time.process_time() - started) / len(tokens)


async def run(tokens: int, rounds: int) -> dict[str, float]:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    document = {
        "keys": [
            {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "r", "alg": "RS256"},
            {**ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "e", "alg": "ES256"},
        ]
    }

    async def certs(request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/certs", certs)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 3600}
    makers: dict[str, Callable[[int], str]] = {
        "HS256": lambda n: jwt.encode({"sub": "1", "jti": str(n)}, SECRET, "HS256"),
        "RS256": lambda n: jwt.encode(
            {**claims, "sub": "1", "jti": str(n)}, rsa_key, "RS256", headers={"kid": "r"}
        ),
        "ES256": lambda n: jwt.encode(
            {**claims, "sub": "1", "jti": str(n)}, ec_key, "ES256", headers={"kid": "e"}
        ),
    }
    results: dict[str, list[float]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for round_ in range(rounds):
                # interleaved, so drift between rounds hits every method alike
                for method, make in makers.items():
                    verifier = await _verifier(session, f"http://127.0.0.1:{port}/certs")
                    fresh = [make(round_ * tokens + n) for n in range(tokens)]
                    results.setdefault(f"{method}, first sight", []).append(
                        await _per_token(verifier, fresh)
                    )
                    results.setdefault(f"{method}, cached", []).append(
                        await _per_token(verifier, fresh)
                    )
    finally:
        await runner.cleanup()
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    medians = asyncio.run(run(args.tokens, args.rounds))
    print(f"| verification ({args.tokens} tokens x {args.rounds} rounds) | CPU µs per token |")
    print("| --- | ---: |")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e6:.1f} |")


if __name__ == "__main__":
    main()
