"""The identity provider's signing keys: fetched, cached, refreshed, rotated.

PyJWT parses the keys (`PyJWK`: no hand-written crypto) but its `PyJWKClient` fetches with
blocking `urllib` and refetches on every unknown `kid`; here the document comes over the
service's own aiohttp session, with a timeout, refreshed in the background before the
provider's `Cache-Control: max-age` runs out, and refetched for an unknown `kid` at most once
per `min_refetch` seconds: a token naming a key published a moment ago waits for that
refetch (it is not refused), and a flood of made-up `kid`s costs the provider one request
per interval. Keys stay in use while the provider is unreachable (the age gauge shows it);
a key the provider stops publishing is dropped at the next successful fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable

import aiohttp

from ..auth_settings import AuthSettings
from .keys import JwksUnavailable, SigningKey, max_age, signing_keys

log = logging.getLogger(__name__)

#: a JWKS document is a few KiB; anything far larger is not one
MAX_DOCUMENT_BYTES = 512 * 1024
#: the first retries after a failed fetch come quickly, then every minute at most
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
#: requests that may wait at once for a refetch (an unknown kid); a flood past it is
#: answered at once from the keys at hand
MAX_WAITING = 1000


class JwksKeys:
    """The keys of one JWKS document. `run()` is the background refresher; `key()` is what a
    token's verification awaits."""

    def __init__(
        self,
        settings: AuthSettings,
        session: aiohttp.ClientSession,
        *,
        on_fetch: Callable[[bool], None] = lambda ok: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert settings.jwks_url is not None
        self._url = settings.jwks_url
        self._settings = settings
        self._session = session
        self._on_fetch = on_fetch
        self._clock = clock
        self._keys: dict[str | None, list[SigningKey]] = {}
        self._started = clock()
        self._fetched_at: float | None = None
        self._attempted_at = -math.inf
        self._failures = 0  # consecutive failed fetches
        self._refresh_in = settings.jwks_default_refresh_seconds
        self._fetching: asyncio.Task[bool] | None = None
        self._waiting = 0  # requests waiting for the next fetch allowed
        #: why the last fetch failed (None after a success)
        self.last_error: str | None = None

    @property
    def count(self) -> int:
        return sum(len(keys) for keys in self._keys.values())

    def age_seconds(self) -> float:
        """Seconds since the keys in use were fetched (since start-up before the first)."""
        return self._clock() - (self._started if self._fetched_at is None else self._fetched_at)

    def holds(self, key: SigningKey) -> bool:
        """Whether `key` is still published (as of the last successful fetch)."""
        return key in self._keys.get(key.kid, ())

    async def key(self, kid: str | None, alg: str) -> SigningKey | None:
        """The key for a token's `kid`; None when the provider does not publish it.
        Raises JwksUnavailable when it may, but the provider cannot be asked."""
        found = self._find(kid, alg)
        if found is not None:
            return found
        await self._refetch()
        found = self._find(kid, alg)
        if found is not None:
            return found
        if self._fetched_at is None or self._failures:
            raise JwksUnavailable("the identity provider's keys cannot be fetched")
        return None

    async def _refetch(self) -> None:
        """Join the fetch in flight, or wait for the next one allowed (at most min_refetch
        after the last): a key published just after a fetch is still found, yet a flood of
        unknown kids shares one fetch per interval. While the provider fails, and past
        MAX_WAITING waiting requests, the rest are answered from the keys at hand."""
        asked = self._clock()
        while True:
            if self._fetching is not None:
                await asyncio.shield(self._fetching)
                return
            if self._attempted_at >= asked:  # a fetch began after we asked: its keys count
                return
            wait = self._attempted_at + self._min_refetch - self._clock()
            if wait <= 0:
                await self.refresh()
                return
            # the last fetch failed: the provider is down, waiting would only delay the 503
            # (the refresher keeps retrying); or too many wait already
            if self._failures or self._waiting >= MAX_WAITING:
                return
            self._waiting += 1
            try:
                await asyncio.sleep(wait)
            finally:
                self._waiting -= 1

    @property
    def _min_refetch(self) -> float:
        return self._settings.jwks_min_refetch_seconds

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        if kid is not None:
            # a published kid whose key does not fit `alg` is returned all the same: the
            # verifier refuses it (401), there is nothing to refetch
            candidates = self._keys.get(kid, [])
            fitting = [key for key in candidates if key.fits(alg)]
            return (fitting or candidates)[0] if candidates else None
        # no `kid`: only unambiguous when exactly one published key fits
        fitting = [key for keys in self._keys.values() for key in keys if key.fits(alg)]
        return fitting[0] if len(fitting) == 1 else None

    async def refresh(self) -> bool:
        """Fetch the document now (or join the fetch in flight); True when it succeeded."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch(), name="jwks-fetch")
            self._fetching.add_done_callback(self._fetched)
        # shielded: a request that gives up does not cancel the fetch the others wait for
        return await asyncio.shield(self._fetching)

    def _fetched(self, task: asyncio.Task[bool]) -> None:
        self._fetching = None

    async def run(self) -> None:
        """Refresh before the keys go stale; after a failure, retry with a backoff."""
        while True:
            if self._failures:
                backoff = RETRY_BASE_SECONDS * 2 ** min(self._failures - 1, 16)
                due = self._attempted_at + min(RETRY_CAP_SECONDS, self._refresh_in, backoff)
            elif self._fetched_at is None:
                due = self._clock()
            else:
                due = self._fetched_at + self._refresh_in
            wait = due - self._clock()
            if wait > 0:
                # re-evaluated after the sleep: a fetch for an unknown kid may have refreshed
                await asyncio.sleep(wait)
                continue
            await self.refresh()

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            await asyncio.gather(self._fetching, return_exceptions=True)

    async def _fetch(self) -> bool:
        self._attempted_at = self._clock()
        try:
            keys, max_age = await self._download()
        except Exception as error:  # a fetch, whatever goes wrong, never ends the refresher
            self._failures += 1
            self.last_error = str(error)
            self._on_fetch(False)
            log.warning(
                "JWKS fetch failed: %s",
                error,
                exc_info=not isinstance(error, JwksUnavailable),  # a bug: its traceback too
                extra={"jwks_url": self._url, "failures": self._failures},
            )
            return False
        self._replace(keys)
        self._fetched_at = self._clock()
        self._failures = 0
        self.last_error = None
        self._refresh_in = self._refresh_interval(max_age)
        self._on_fetch(True)
        return True

    async def _download(self) -> tuple[list[SigningKey], float | None]:
        timeout = aiohttp.ClientTimeout(total=self._settings.jwks_timeout_seconds)
        try:
            async with self._session.get(
                self._url, timeout=timeout, headers={"Accept": "application/json"}
            ) as response:
                if response.status != 200:
                    raise JwksUnavailable(f"HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:  # stop reading: not a JWKS document
                        raise JwksUnavailable(f"the document is over {MAX_DOCUMENT_BYTES} bytes")
                cache_control = response.headers.get("Cache-Control", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise JwksUnavailable(f"{type(error).__name__}: {error}") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable("the document is not JSON") from None
        return signing_keys(document), max_age(cache_control)

    def _replace(self, keys: list[SigningKey]) -> None:
        """Publish the new set; an unchanged key keeps its object, so tokens verified with it
        stay cached across refreshes."""
        old = {(key.kid, key.data): key for group in self._keys.values() for key in group}
        new: dict[str | None, list[SigningKey]] = {}
        for key in keys:
            new.setdefault(key.kid, []).append(old.get((key.kid, key.data), key))
        added = sorted(str(kid) for kid in new.keys() - self._keys.keys())
        removed = sorted(str(kid) for kid in self._keys.keys() - new.keys())
        self._keys = new
        if added or removed:
            log.info(
                "JWKS keys changed: %d in use",
                self.count,
                extra={"kids_added": added, "kids_removed": removed},
            )

    def _refresh_interval(self, max_age: float | None) -> float:
        """Refresh at 3/4 of the provider's max-age, so the keys are renewed before a cache
        in between would have expired them; within [min_refetch, max_refresh]."""
        settings = self._settings
        if max_age is None:
            return settings.jwks_default_refresh_seconds
        return min(settings.jwks_max_refresh_seconds, max(self._min_refetch, 0.75 * max_age))
