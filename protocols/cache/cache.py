"""ResponseCache: lookups, fills, request coalescing, purges and counters over one store (memory or Redis)."""
from __future__ import annotations

import asyncio
import collections
import email.utils
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from protocols.cache.config import CachePolicy, Freshness
from protocols.cache.entry import CachedResponse, Record, VarySpec
from protocols.cache.keys import MAX_URL_KEY, base_key, url_key, variant_key, vary_names

Headers = list[tuple[bytes, bytes]]
# Fields of the client-facing answer that belong to one exchange, not to the stored representation.
_NOT_STORED = frozenset({b"x-request-id", b"via", b"date", b"age", b"x-cache", b"server", b"ratelimit-limit",
                        b"ratelimit-remaining", b"ratelimit-reset", b"traceparent"})
_BYPASS_REQUEST_FIELDS = frozenset({b"range"})  # partial answers are not cached: such requests go upstream
X_CACHE = b"x-cache"


class Store(Protocol):
    shared: bool

    async def get(self, key: str) -> Record | None: ...

    async def set(self, key: str, record: Record, ttl_s: float) -> bool: ...

    async def purge(self, route: str | None = None, url: str | None = None) -> int: ...

    async def aclose(self) -> None: ...


class Recorder(Protocol):
    def cache_result(self, route: str, hit: bool) -> None: ...

    def cache_stored(self, route: str, size: int) -> None: ...


@dataclass(slots=True)
class Lookup:
    """One request's view of the cache: its keys, and a fresh entry (`entry`, a hit) or none (a miss), and the
    last good copy within its stale-if-error window (`stale`)."""

    policy: CachePolicy
    route: str
    method: str
    url: str
    base: str
    key: str  # where a fill stores the answer (the variant key once the Vary spec is known)
    request_headers: Headers
    entry: CachedResponse | None
    stale: CachedResponse | None
    generation: int


@dataclass(slots=True)
class Flight:
    """`leader`: this request goes upstream for everyone waiting on the key. A follower finds the leader's answer
    with a new `lookup` (or, if the answer could not be stored or the wait ran out, goes upstream itself)."""

    leader: bool
    waited_s: float = 0.0


class RouteCounters:
    """Per route: answers served from the cache, fetched upstream, served stale; entries and bytes stored."""

    __slots__ = ("hits", "misses", "stale", "stores", "stored_bytes")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.stale = 0
        self.stores = 0
        self.stored_bytes = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "stale": self.stale, "stores": self.stores,
                "stored_bytes": self.stored_bytes}


class ResponseCache:
    """The response cache of one gateway process, over a MemoryStore (private) or a RedisCacheStore (shared).

    Coalescing is per process: concurrent misses for one key in this process make one upstream request; with
    N processes sharing Redis, up to N can go at once (then all of them find the stored answer).
    `clock` is wall-clock time (entries are shared between processes, and Age must mean the same everywhere).
    `recorder` (protocols.recorder.recorder) gets `cache_result(route, hit)` for every HIT, STALE (hit=True) and
    MISS (hit=False) counted through `count`.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 recorder: Recorder | None = None) -> None:
        self.store = store
        self.clock = clock
        self.recorder = recorder
        self.generation = 0  # bumped by every purge: a fill begun before it is not stored
        self.counters: dict[str, RouteCounters] = {}
        self._flights: dict[str, asyncio.Event] = {}
        self._posted: collections.deque[tuple[str | None, str | None]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[int]] = set()

    # --- Lookups --------------------------------------------------------------------------------------------

    async def lookup(self, policy: CachePolicy, route: str, method: str, host: str, path: str, query: bytes,
                     headers: Headers) -> Lookup | None:
        """The cache's answer for a request, or None when the request bypasses the cache (a method the route does
        not cache, a Range request, a URL too long to key). `host` is lower-case without port, `path` the
        request path as matched, `headers` the client's fields."""
        if self._posted:
            self._apply_posted()
        if self._tasks and not self.store.shared:
            # A memory purge finishes in its first step: let it, so that nothing it removes is served again.
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if method not in policy.methods:
            return None
        for name, _ in headers:
            if name in _BYPASS_REQUEST_FIELDS:
                return None
        url = url_key(method, host, path, query)
        if len(url) > MAX_URL_KEY:
            return None
        generation = self.generation
        base = base_key(route, url, headers, policy.vary_headers)
        key = base
        record = await self.store.get(base)
        if isinstance(record, VarySpec):
            key = variant_key(base, headers, record.names)
            record = await self.store.get(key)
        entry = stale = None
        if isinstance(record, CachedResponse):
            now = self.clock()
            if now < record.fresh_until:
                entry = record
            elif now < record.stale_until:
                stale = record
        return Lookup(policy, route, method, url, base, key, headers, entry, stale, generation)

    def count(self, route: str, outcome: bytes) -> None:
        """Count one answer: b"HIT", b"MISS" or b"STALE" (the value of X-Cache it carried)."""
        counters = self.counters.get(route)
        if counters is None:
            counters = self.counters[route] = RouteCounters()
        if outcome == b"HIT":
            counters.hits += 1
        elif outcome == b"STALE":
            counters.stale += 1
        else:
            counters.misses += 1
        if self.recorder is not None:
            self.recorder.cache_result(route, outcome != b"MISS")

    def answer(self, entry: CachedResponse, outcome: bytes, method: str,
               request_headers: Headers) -> tuple[int, Headers, bytes]:
        """Status, head and body for a stored answer (X-Cache and Age added; the caller adds X-Request-ID).

        A request whose If-None-Match names the stored ETag, or whose If-Modified-Since is not older than the
        stored Last-Modified, gets 304 with the validators and caching fields only.
        """
        now = self.clock()
        age = (b"age", str(entry.age(now)).encode())
        if entry.status == 200 and _not_modified(entry, request_headers):
            kept = {b"etag", b"cache-control", b"expires", b"vary", b"content-location", b"last-modified"}
            return 304, [(n, v) for n, v in entry.headers if n in kept] + [age, (X_CACHE, outcome)], b""
        # The body is sent in one piece, so it is framed by its real length (a streamed answer had none).
        headers = [(n, v) for n, v in entry.headers if n != b"content-length"]
        if entry.status not in (204, 304):
            headers.append((b"content-length", b"%d" % len(entry.body)))
        headers += [age, (X_CACHE, outcome)]
        return entry.status, headers, b"" if method == "HEAD" else entry.body

    # --- Fills ----------------------------------------------------------------------------------------------

    def filler(self, lookup: Lookup, status: int, upstream_headers: Headers) -> Filler | None:
        """A Filler when the upstream answer (status and head, as received) may be stored, else None.

        HEAD answers are never stored (no body); nor are answers during a purge that began after the lookup.
        """
        if lookup.method != "GET" or lookup.generation != self.generation:
            return None
        authorized = any(name == b"authorization" for name, _ in lookup.request_headers)
        freshness = lookup.policy.freshness(status, upstream_headers, self.clock(), authorized)
        if freshness is None:
            return None
        return Filler(self, lookup, freshness, vary_names(upstream_headers))

    async def store_entry(self, lookup: Lookup, vary: tuple[bytes, ...], entry: CachedResponse,
                          ttl_s: float) -> bool:
        if lookup.generation != self.generation:
            return False
        key = lookup.base
        if vary:
            # The spec outlives any one variant, so a lookup can always find the variant it needs.
            await self.store.set(lookup.base, VarySpec(vary, entry.route, entry.url), ttl_s)
            key = variant_key(lookup.base, lookup.request_headers, vary)
        stored = await self.store.set(key, entry, ttl_s)
        if stored:
            counters = self.counters.get(lookup.route)
            if counters is None:
                counters = self.counters[lookup.route] = RouteCounters()
            counters.stores += 1
            counters.stored_bytes += len(entry.body)
            if self.recorder is not None:
                self.recorder.cache_stored(lookup.route, len(entry.body))
        return stored

    # --- Coalescing -----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def single_flight(self, key: str, wait_s: float = 10.0) -> AsyncIterator[Flight]:
        """`async with cache.single_flight(lookup.base) as flight:` the first request for a key leads (goes
        upstream, and its fill stores the answer before the block ends); the others wait for it, at most
        `wait_s`, then look up again."""
        event = self._flights.get(key)
        if event is None:
            event = self._flights[key] = asyncio.Event()
            try:
                yield Flight(leader=True)
            finally:
                if self._flights.get(key) is event:
                    del self._flights[key]
                event.set()
            return
        started = time.monotonic()
        try:
            async with asyncio.timeout(wait_s):
                await event.wait()
        except TimeoutError:
            pass
        yield Flight(leader=False, waited_s=time.monotonic() - started)

    # --- Purges ---------------------------------------------------------------------------------------------

    async def purge(self, route: str | None = None, url: str | None = None) -> int:
        """Remove stored answers: all (no arguments), one route's, or one URL key's (see keys.parse_url_key),
        or one URL key's of one route. Fills already under way are not stored."""
        with self._lock:
            self.generation += 1
        return await self.store.purge(route, url)

    def post_purge(self, route: str | None = None, url: str | None = None) -> None:
        """Thread-safe `purge` for the table watcher's thread: in-flight fills stop counting at once; the store is
        purged on the serving loop (right away when it is known, else at the next lookup)."""
        with self._lock:
            self.generation += 1
            self._posted.append((route, url))
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._apply_posted)

    def _apply_posted(self) -> None:
        self._loop = asyncio.get_running_loop()
        while self._posted:
            route, url = self._posted.popleft()
            task = self._loop.create_task(self.store.purge(route, url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def bind_loop(self) -> None:
        """Remember the serving loop (call once from it at start-up) so posted purges run without waiting for a
        request."""
        self._loop = asyncio.get_running_loop()

    # --- Reporting ------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters per route, and the store's size when it is this process's memory."""
        data: dict[str, Any] = {"routes": {name: c.as_dict() for name, c in sorted(self.counters.items())},
                                "shared": self.store.shared}
        if not self.store.shared:
            data["entries"] = len(self.store)  # type: ignore[arg-type]
            data["bytes"] = getattr(self.store, "bytes", 0)
            data["max_bytes"] = getattr(self.store, "max_bytes", 0)
        return data

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.store.aclose()


class Filler:
    """Collects one answer as the client gets it (after the response rules, before compression) and stores it
    when it ends, unless its body outgrew `max_body_bytes`."""

    __slots__ = ("cache", "lookup", "freshness", "vary", "status", "headers", "parts", "size", "abandoned")

    def __init__(self, cache: ResponseCache, lookup: Lookup, freshness: Freshness, vary: tuple[bytes, ...]) -> None:
        self.cache = cache
        self.lookup = lookup
        self.freshness = freshness
        self.vary = vary
        self.status = 0
        self.headers: Headers = []
        self.parts: list[bytes] = []
        self.size = 0
        self.abandoned = False

    def head(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = [(n, v) for n, v in headers if n not in _NOT_STORED]

    def feed(self, chunk: bytes) -> None:
        if self.abandoned or not chunk:
            return
        self.size += len(chunk)
        if self.size > self.lookup.policy.max_body_bytes:
            self.abandoned = True
            self.parts = []
            return
        self.parts.append(bytes(chunk))

    async def finish(self) -> bool:
        """Store the answer; False when it was abandoned or the store refused it."""
        if self.abandoned:
            return False
        now = self.cache.clock()
        fresh, stale = self.freshness.fresh_s, self.freshness.stale_s
        lookup = self.lookup
        entry = CachedResponse(self.status, self.headers, b"".join(self.parts), now, now + fresh,
                               now + fresh + stale, self.freshness.initial_age, lookup.route, lookup.url)
        return await self.cache.store_entry(lookup, self.vary, entry, fresh + stale)


def _not_modified(entry: CachedResponse, request_headers: Headers) -> bool:
    etag = entry.header(b"etag")
    modified = entry.header(b"last-modified")
    for name, value in request_headers:
        if name == b"if-none-match":
            if etag is None:
                return False
            wanted = {tag.strip().removeprefix(b"W/") for tag in value.split(b",")}
            return b"*" in wanted or etag.removeprefix(b"W/") in wanted
    for name, value in request_headers:
        if name == b"if-modified-since" and modified is not None:
            try:
                since = email.utils.parsedate_to_datetime(value.decode("latin-1"))
                last = email.utils.parsedate_to_datetime(modified.decode("latin-1"))
            except (TypeError, ValueError, IndexError):
                return False
            return last <= since
    return False
