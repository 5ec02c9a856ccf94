"""Cache keys (normalised query, configured fields, Vary) and the stores: the byte-bounded LRU and the record bytes."""
from __future__ import annotations

import asyncio

from protocols.cache import CachedResponse, MemoryStore, VarySpec, parse_url_key, url_key
from protocols.cache.entry import dumps, loads
from protocols.cache.keys import base_key, variant_key


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(size: int, url: str = "GET h/x", route: str = "r") -> CachedResponse:
    return CachedResponse(200, [(b"content-type", b"text/plain")], b"x" * size, 0, 10, 10, 0, route, url)


def test_query_parameters_are_sorted_by_name_keeping_repeats_in_order():
    assert url_key("GET", "h", "/p", b"b=2&a=1&a=0&&c") == "GET h/p?a=1&a=0&b=2&c"
    assert url_key("HEAD", "h", "/p", b"") == "GET h/p"


def test_an_operators_key_or_url_reads_as_the_caches_key():
    assert parse_url_key("GET example.com/items?b=2&a=1") == "GET example.com/items?a=1&b=2"
    assert parse_url_key("https://Example.com:8443/items") == "GET example.com/items"
    assert parse_url_key("example.com") == "GET example.com/"


def test_configured_fields_and_vary_pick_different_keys():
    first = base_key("r", "GET h/", [(b"x-tenant", b"a")], (b"x-tenant",))
    assert first != base_key("r", "GET h/", [(b"x-tenant", b"b")], (b"x-tenant",))
    assert base_key("r", "GET h/", [], ()) == "r|GET h/|-"
    same = variant_key("b", [(b"accept-encoding", b"gzip, br")], (b"accept-encoding",))
    assert same == variant_key("b", [(b"accept-encoding", b"br,gzip;q=1")], (b"accept-encoding",))
    assert same != variant_key("b", [(b"accept-encoding", b"gzip")], (b"accept-encoding",))


def test_records_round_trip_through_their_bytes_and_foreign_bytes_are_a_miss():
    stored = entry(10)
    assert loads(dumps(stored)) == stored
    spec = VarySpec((b"accept-language",), "r", "GET h/")
    assert loads(dumps(spec)) == spec
    assert loads(b"garbage bytes here") is None


def test_the_lru_stays_within_its_byte_bound_dropping_the_least_recently_used():
    async def scenario() -> None:
        store = MemoryStore(max_bytes=80_000)
        for name in "abcdefgh":
            assert await store.set(name, entry(9000, f"GET h/{name}"), 60)
        await store.get("a")  # used: "b" and "c" are now the least recently used
        for name in "ij":
            assert await store.set(name, entry(9000, f"GET h/{name}"), 60)
        assert store.bytes <= 80_000 and len(store) == 8
        assert await store.get("a") is not None and await store.get("j") is not None
        assert await store.get("b") is None and await store.get("c") is None

    asyncio.run(scenario())


def test_a_record_over_an_eighth_of_the_store_is_not_kept():
    async def scenario() -> None:
        store = MemoryStore(max_bytes=80_000)
        assert not await store.set("big", entry(20_000), 60)
        assert len(store) == 0

    asyncio.run(scenario())


def test_expired_records_are_gone():
    async def scenario() -> None:
        clock = Clock()
        store = MemoryStore(clock=clock)
        await store.set("k", entry(10), 5)
        clock.now += 6
        assert await store.get("k") is None and store.bytes == 0

    asyncio.run(scenario())


def test_purges_by_route_and_by_url():
    async def scenario() -> None:
        store = MemoryStore()
        await store.set("1", entry(1, "GET h/a", "one"), 60)
        await store.set("2", entry(1, "GET h/b", "one"), 60)
        await store.set("3", entry(1, "GET h/a", "two"), 60)
        assert await store.purge(url="GET h/a") == 2
        assert await store.purge(route="one") == 1
        assert len(store) == 0

    asyncio.run(scenario())
