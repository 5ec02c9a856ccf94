"""The cache around one upstream exchange: hit, coalesced miss, or stale copy for a failing upstream."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from protocols.cache.cache import ResponseCache
from protocols.cache.config import CachePolicy
from protocols.errors import GatewayError
from protocols.shaping.respond import ResponseShaper

Headers = list[tuple[bytes, bytes]]


async def through_cache(cache: ResponseCache, policy: CachePolicy, shaper: ResponseShaper, route: str, method: str,
                        host: str, path: str, query: bytes, headers: Headers,
                        forward: Callable[[], Awaitable[None]]) -> None:
    """Answer from the cache, or run `forward()` (the upstream exchange, sending through `shaper`) once for all
    concurrent misses of the key, storing its answer when it may be.

    `forward` raising a 5xx GatewayError (refused, reset, timeout, no healthy backend) before anything was sent
    is answered with the stale copy when there is one; otherwise the error propagates to the caller's handler.
    """
    lookup = await cache.lookup(policy, route, method, host, path, query, headers)
    if lookup is None:
        await forward()
        return
    shaper.cache = cache
    if lookup.entry is not None:
        shaper.lookup = lookup
        await shaper.answer_from_cache(lookup.entry, b"HIT")
        return
    if not policy.coalesce:
        shaper.lookup = lookup
        await _forward(shaper, forward)
        return
    async with cache.single_flight(lookup.base, policy.coalesce_wait_s) as flight:
        if not flight.leader:
            again = await cache.lookup(policy, route, method, host, path, query, headers)
            if again is not None and again.entry is not None:
                shaper.lookup = again
                await shaper.answer_from_cache(again.entry, b"HIT")
                return
            lookup = again or lookup
        shaper.lookup = lookup
        await _forward(shaper, forward)


async def _forward(shaper: ResponseShaper, forward: Callable[[], Awaitable[None]]) -> None:
    try:
        await forward()
    except GatewayError as exc:
        if exc.status >= 500 and await shaper.serve_stale():
            return
        raise
