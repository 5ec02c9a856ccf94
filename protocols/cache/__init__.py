"""The response cache: opt-in per route (`cache` block), in this process's memory or shared through Redis.

Wiring (ProxyApp, through `protocols.shaping`, which does the fill and the X-Cache/Age fields)::

    # once per process:
    store = RedisCacheStore(redis_url) if redis_url else MemoryStore(max_bytes=64 << 20)
    cache = ResponseCache(store, recorder=protocols.recorder.recorder)
    # at table build (protocols.block_errors.BlockError -> the route is refused / left out):
    policy = CachePolicy.from_config(spec.policies.get("cache"))        # None: the route does not cache
    # per request, after auth and rate limiting, before balancing:
    lookup = await cache.lookup(policy, route.name, method, host, clean_path, query, scope["headers"])
    if lookup and lookup.entry: answer from it (cache.answer(...)), count b"HIT"
    else: async with cache.single_flight(lookup.base, policy.coalesce_wait_s) as flight:
              a follower looks up again first; the leader forwards with a Filler tee on its answer
    on an upstream failure (connection error, 5xx): lookup.stale, when there is one, answers (X-Cache: STALE)
    # purges: await cache.purge(route=..., url=...) on the loop; cache.post_purge(...) from another thread

The `cache` block (null: no caching)::

    enabled            true
    ttl_s              60       freshness when the upstream gives none (no max-age, s-maxage or Expires)
    vary_headers       []       request fields that are part of every key (besides the upstream's Vary)
    store_set_cookie   false    answers with Set-Cookie are not stored unless true
    stale_if_error_s   0        how long after expiry the last good copy may answer for a failing upstream
                                (connection errors, timeouts, 5xx); the answer's own stale-if-error wins;
                                must-revalidate / proxy-revalidate forbid it
    max_body_bytes     1 MiB    larger answers are streamed and not stored
    methods            ["GET", "HEAD"]   HEAD is answered from the GET entry and never stored itself
    statuses           [200, 203, 204, 300, 301, 404, 405, 410, 414, 501]
    coalesce           true     concurrent misses for a key make one upstream request (per process)
    coalesce_wait_s    10       how long the others wait for it before going upstream themselves

HTTP semantics (RFC 9111, a shared cache): Cache-Control `no-store`, `private` and `no-cache` are not stored
(no-cache would need revalidation before each use, which this cache does not do); `s-maxage` > `max-age` >
`Expires` > `ttl_s`, less the upstream's `Age`; `Vary` picks variants (`Vary: *` is not stored); answers to
requests with Authorization only with `public`, `s-maxage` or `must-revalidate`. Requests' own Cache-Control
is not honoured (as nginx and Varnish by default); Range requests bypass. Answers carry `X-Cache: HIT`, `MISS`
or `STALE`, and `Age` when from the cache; a matching If-None-Match / If-Modified-Since gets 304 on a hit.
"""
from __future__ import annotations

from protocols.cache.cache import Filler, Flight, Lookup, ResponseCache, RouteCounters
from protocols.cache.config import DEFAULT_STATUSES, KEYS, CachePolicy, compile_policy
from protocols.cache.entry import CachedResponse, VarySpec
from protocols.cache.keys import parse_url_key, url_key
from protocols.cache.memory import MemoryStore
from protocols.cache.redis_store import RedisCacheStore

__all__ = [
    "DEFAULT_STATUSES", "KEYS", "CachePolicy", "CachedResponse", "Filler", "Flight", "Lookup", "MemoryStore",
    "RedisCacheStore", "ResponseCache", "RouteCounters", "VarySpec", "compile_policy",
    "parse_url_key", "url_key",
]
