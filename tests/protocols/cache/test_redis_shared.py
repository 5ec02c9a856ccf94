"""The Redis store: one cache shared by two proxy processes, TTLs, purges. Needs REDIS_URL (the scaled-out
suite, always in CI); skipped with that reason otherwise."""
from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
import redis

from protocols.cache import CachedResponse, RedisCacheStore, parse_url_key
from tests.support.proxy import ProxyProcess, call, route
from tests.support.upstream import UpstreamServer

REDIS_URL = os.environ.get("REDIS_URL", "")
PREFIX = "rusta:cache:"  # the gateway's own (the route names are unique per test)
pytestmark = [pytest.mark.redis,
              pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite, always run in CI)")]


@pytest.fixture
def route_name():
    name = f"shared-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{PREFIX}{name}|*"):
        client.unlink(key)


@pytest.fixture
def two_gateways(route_name):
    with UpstreamServer() as upstream:
        routes = [route(route_name, "/s/{rest}", upstream.port, internal_path="/{rest}",
                        policies={"cache": {"ttl_s": 60}})]
        with ProxyProcess(routes, REDIS_URL) as first, ProxyProcess(routes, REDIS_URL) as second:
            yield upstream, (first, second)


def test_an_answer_stored_by_one_process_is_a_hit_in_the_other(two_gateways):
    upstream, (first, second) = two_gateways
    miss = call(first.port, "GET", "/s/respond?body=shared&seq=1", [("Host", "gw")])
    hit = call(second.port, "GET", "/s/respond?body=shared&seq=1", [("Host", "gw")])
    assert miss.header("x-cache") == ["MISS"]
    assert hit.header("x-cache") == ["HIT"] and hit.body == b"shared#1"
    assert upstream.count() == 1


def test_a_purge_of_the_shared_store_reaches_every_process(two_gateways, route_name):
    upstream, (first, second) = two_gateways
    call(first.port, "GET", "/s/respond?body=p&seq=1", [("Host", "gw")])
    store = RedisCacheStore(REDIS_URL, prefix=PREFIX)

    async def purge() -> int:
        # The gateway stores the answer as it streams it to the client: the store may land just after the call.
        try:
            deadline = time.monotonic() + 5
            while True:
                purged = await store.purge(route=route_name, url=parse_url_key("gw/s/respond?body=p&seq=1"))
                if purged or time.monotonic() > deadline:
                    return purged
                await asyncio.sleep(0.05)
        finally:
            await store.aclose()

    assert asyncio.run(purge()) == 1
    assert call(second.port, "GET", "/s/respond?body=p&seq=1", [("Host", "gw")]).header("x-cache") == ["MISS"]


def test_records_carry_their_ttl_and_purges_pick_by_route_and_url(route_name):
    client = redis.Redis.from_url(REDIS_URL)

    async def scenario() -> None:
        store = RedisCacheStore(REDIS_URL, prefix=PREFIX)
        try:
            for url, route_ in (("GET h/a", route_name), ("GET h/b", route_name), ("GET h/a", route_name + "x")):
                record = CachedResponse(200, [], b"body", 0, 1, 1, 0, route_, url)
                assert await store.set(f"{route_}|{url}|-", record, 30)
            assert 0 < client.pttl(f"{PREFIX}{route_name}|GET h/a|-") <= 30_000
            assert (await store.get(f"{route_name}|GET h/a|-")).body == b"body"  # type: ignore[union-attr]
            assert await store.purge(url="GET h/a") == 2
            assert await store.purge(route=route_name) == 1
        finally:
            await store.aclose()

    asyncio.run(scenario())
