"""A JWKS endpoint's key set: fetched with httpx, cached, refreshed on an unknown kid at a bounded rate, kept
through outages."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import httpx

from protocols.auth.keys import VerifyKey, jwks_keys, matching_keys

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 512 * 1024


class JwksKeySet:
    """The keys published at `url`, as the policy's verifier sees them.

    Rules, in the order they apply to one lookup:
    - Before the first successful fetch every lookup waits for a fetch (at most one per `min_refresh_s`).
    - After `cache_s` the set is stale: the lookup answers from it at once and a refresh runs in the
      background (stale-while-revalidate), so no request waits for the JWKS endpoint on the hot path.
    - A `kid` the set does not know triggers a refresh that the request waits for, unless a fetch was
      attempted less than `min_refresh_s` ago (an attacker sending random kids costs one fetch per period).
    - A failed fetch (network, status, bad JSON, no usable key) keeps the last good set.
    Concurrent lookups share one fetch in flight. `fetches` counts attempts, for logs and tests.
    """

    def __init__(self, url: str, algorithms: frozenset[str], cache_s: float = 300.0, min_refresh_s: float = 10.0,
                 timeout_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.algorithms = algorithms
        self.cache_s = cache_s
        self.min_refresh_s = min_refresh_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.keys: tuple[VerifyKey, ...] = ()
        self.kids: frozenset[str | None] = frozenset()
        self.version = 0  # bumped whenever the key set changes, so callers can drop what they derived from it
        self.fetches = 0
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[bool] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    def retry_in(self) -> float:
        """Seconds until the next fetch may be attempted."""
        if self._attempted_at is None:
            return 0.0
        return max(0.0, self._attempted_at + self.min_refresh_s - self.clock())

    async def lookup(self, algorithm: str, kid: str | None) -> list[VerifyKey]:
        """The keys a token with this `alg` and `kid` may be verified with (possibly none)."""
        may_fetch = self._fetching() or self.retry_in() == 0.0
        if self._loaded_at is None:
            if may_fetch:
                await self.refresh()
        elif kid is not None and kid not in self.kids and may_fetch:
            await self.refresh()
        elif self.clock() - self._loaded_at >= self.cache_s and may_fetch:
            self._start_refresh()
        return matching_keys(self.keys, algorithm, kid)

    def _fetching(self) -> bool:
        task = self._inflight
        return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()

    async def refresh(self) -> bool:
        """Fetch now (joining a fetch already in flight); True when a usable key set was installed."""
        task = self._start_refresh()
        return await asyncio.shield(task)

    async def idle(self) -> None:
        """Wait for a fetch in flight, if any (shutdown; tests)."""
        if self._fetching():
            await asyncio.shield(self._inflight)  # type: ignore[arg-type]

    def _start_refresh(self) -> asyncio.Task[bool]:
        if self._fetching():
            return self._inflight  # type: ignore[return-value]
        self._attempted_at = self.clock()
        task = self._inflight = asyncio.get_running_loop().create_task(self._fetch())
        return task

    async def _fetch(self) -> bool:
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
                response = await client.get(self.url, headers={"accept": "application/json"})
            if response.status_code != 200:
                raise ValueError(f"status {response.status_code}")
            if len(response.content) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
            keys = jwks_keys(json.loads(response.content), self.algorithms)
            if not keys:
                raise ValueError("no usable signature key for the configured algorithms")
        except (httpx.HTTPError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            log.warning("JWKS fetch from %s failed (%s); %s", self.url, exc,
                        "keeping the last good key set" if self.loaded else "no key set yet")
            return False
        self._install(keys)
        return True

    def _install(self, keys: list[VerifyKey]) -> None:
        kids = frozenset(key.kid for key in keys)
        if tuple(keys) != self.keys:
            self.version += 1
            if self.loaded:
                log.info("JWKS key set at %s changed: kids %s", self.url, sorted(k or "" for k in kids))
        self.keys = tuple(keys)
        self.kids = kids
        self._loaded_at = self.clock()

