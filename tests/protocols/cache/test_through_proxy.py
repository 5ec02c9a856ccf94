"""The response cache on real traffic: HTTP caching semantics, Vary, Set-Cookie, coalescing counted at a real
upstream, stale-if-error, purges and counters. The cache's clock is a test clock (no sleeps); answers from the
upstream end in "#N", its count of /respond requests, so a stored answer is told from a fresh one."""
from __future__ import annotations

import email.utils
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from protocols.cache import MemoryStore, ResponseCache, parse_url_key
from protocols.recorder import Recorder
from tests.support.proxy import ProxyServer, call, route
from tests.support.upstream import UpstreamServer, refused_port


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def recorder():
    return Recorder()


def serve(upstream, clock, cache_block=None, *, recorder=None, store=None, port=None, **extra):
    store = store if store is not None else MemoryStore(clock=clock)
    cache = ResponseCache(store, clock=clock, recorder=recorder)
    policies = {"cache": cache_block if cache_block is not None else {"ttl_s": 30}, **extra}
    routes = [route("cached", "/c/{rest}", port or upstream.port, internal_path="/{rest}", methods=("GET", "POST"),
                    policies=policies)]
    return ProxyServer(routes, cache=cache)


def target(*headers: str, status: int = 200, body: str = "answer", query: str = "") -> str:
    fields = "".join(f"&header={quote(h)}" for h in headers)
    return f"/c/respond?status={status}&body={quote(body)}&seq=1{fields}{query}"


def get(proxy, path, headers=(), method="GET"):
    return proxy.call(method, path, [("Host", "gw.test"), *headers])


def test_a_second_request_is_a_hit_with_age(upstream, clock):
    with serve(upstream, clock) as proxy:
        first = get(proxy, target())
        clock.now += 7
        second = get(proxy, target())
    assert first.header("x-cache") == ["MISS"] and first.body == b"answer#1"
    assert second.header("x-cache") == ["HIT"] and second.body == b"answer#1"
    assert second.header("age") == ["7"]
    assert upstream.count() == 1


def test_max_age_ends_the_freshness(upstream, clock):
    with serve(upstream, clock) as proxy:
        path = target("Cache-Control: max-age=10")
        get(proxy, path)
        clock.now += 9
        assert get(proxy, path).header("x-cache") == ["HIT"]
        clock.now += 2
        assert get(proxy, path).body == b"answer#2"


def test_the_route_ttl_applies_when_the_upstream_says_nothing(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target())
        clock.now += 29
        assert get(proxy, target()).header("x-cache") == ["HIT"]
        clock.now += 2
        assert get(proxy, target()).header("x-cache") == ["MISS"]


def test_s_maxage_wins_over_max_age_and_age_counts(upstream, clock):
    with serve(upstream, clock) as proxy:
        path = target("Cache-Control: max-age=1, s-maxage=100", "Age: 40")
        get(proxy, path)
        clock.now += 59
        hit = get(proxy, path)
        assert hit.header("x-cache") == ["HIT"] and hit.header("age") == ["99"]
        clock.now += 2
        assert get(proxy, path).header("x-cache") == ["MISS"]


def test_expires_is_honoured(upstream, clock):
    with serve(upstream, clock) as proxy:
        path = target("Expires: " + email.utils.formatdate(clock.now + 20, usegmt=True))
        get(proxy, path)
        clock.now += 19
        assert get(proxy, path).header("x-cache") == ["HIT"]
        clock.now += 2
        assert get(proxy, path).header("x-cache") == ["MISS"]


@pytest.mark.parametrize("directive", ["no-store", "private", "no-cache"])
def test_no_store_private_and_no_cache_answers_are_not_stored(upstream, clock, directive):
    with serve(upstream, clock) as proxy:
        path = target(f"Cache-Control: {directive}")
        assert get(proxy, path).body == b"answer#1"
        assert get(proxy, path).body == b"answer#2"


def test_set_cookie_answers_are_not_stored_unless_the_route_says_so(upstream, clock):
    path = target("Set-Cookie: session=abc")
    with serve(upstream, clock) as proxy:
        get(proxy, path)
        assert get(proxy, path).header("x-cache") == ["MISS"]
    with serve(upstream, clock, {"store_set_cookie": True}) as proxy:
        get(proxy, path)
        hit = get(proxy, path)
        assert hit.header("x-cache") == ["HIT"] and hit.header("set-cookie") == ["session=abc"]


def test_vary_keeps_one_entry_per_value_of_the_named_field(upstream, clock):
    with serve(upstream, clock) as proxy:
        path = target("Vary: Accept-Language")
        assert get(proxy, path, [("Accept-Language", "en")]).body == b"answer#1"
        assert get(proxy, path, [("Accept-Language", "fr")]).body == b"answer#2"
        english = get(proxy, path, [("Accept-Language", "en")])
        assert english.body == b"answer#1" and english.header("x-cache") == ["HIT"]
        assert get(proxy, path, [("Accept-Language", "fr")]).body == b"answer#2"


def test_vary_star_is_never_stored(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target("Vary: *"))
        assert get(proxy, target("Vary: *")).header("x-cache") == ["MISS"]


def test_configured_request_fields_are_part_of_the_key(upstream, clock):
    with serve(upstream, clock, {"vary_headers": ["X-Tenant"]}) as proxy:
        assert get(proxy, target(), [("X-Tenant", "a")]).body == b"answer#1"
        assert get(proxy, target(), [("X-Tenant", "b")]).body == b"answer#2"
        assert get(proxy, target(), [("X-Tenant", "a")]).body == b"answer#1"


def test_query_parameters_in_another_order_share_an_entry(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, "/c/respond?body=q&seq=1&a=1&b=2")
        assert get(proxy, "/c/respond?b=2&seq=1&body=q&a=1").header("x-cache") == ["HIT"]
        assert get(proxy, "/c/respond?b=3&seq=1&body=q&a=1").header("x-cache") == ["MISS"]


def test_only_cacheable_statuses_are_stored(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target(status=404))
        assert get(proxy, target(status=404)).header("x-cache") == ["HIT"]
        get(proxy, target(status=500))
        assert get(proxy, target(status=500)).header("x-cache") == ["MISS"]
        get(proxy, target("Location: /x", status=302))
        assert get(proxy, target("Location: /x", status=302)).header("x-cache") == ["MISS"]


def test_other_methods_bypass_the_cache(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target())
        post = get(proxy, target(), method="POST")
        assert post.header("x-cache") == [] and post.body == b"answer#2"


def test_head_is_answered_from_the_get_entry(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target())
        head = get(proxy, target(), method="HEAD")
        assert head.header("x-cache") == ["HIT"] and head.body == b""
        assert head.header("content-length") == ["8"]
        assert upstream.count() == 1


def test_answers_to_authorized_requests_are_stored_only_when_public(upstream, clock):
    with serve(upstream, clock) as proxy:
        get(proxy, target(), [("Authorization", "Bearer t")])
        assert get(proxy, target()).header("x-cache") == ["MISS"]
        public = target("Cache-Control: public, max-age=60", body="pub")
        get(proxy, public, [("Authorization", "Bearer t")])
        assert get(proxy, public).header("x-cache") == ["HIT"]


def test_a_conditional_request_for_the_stored_etag_gets_304(upstream, clock):
    with serve(upstream, clock) as proxy:
        path = target('ETag: "v7"')
        get(proxy, path)
        reply = get(proxy, path, [("If-None-Match", '"v7"')])
        assert reply.status == 304 and reply.header("x-cache") == ["HIT"] and reply.header("etag") == ['"v7"']


def test_an_answer_over_max_body_bytes_is_not_stored(upstream, clock):
    with serve(upstream, clock, {"max_body_bytes": 100}) as proxy:
        path = "/c/respond?bytes=5000&seq=1"
        get(proxy, path)
        assert get(proxy, path).header("x-cache") == ["MISS"]


def test_a_hundred_concurrent_misses_make_one_upstream_request(upstream, clock):
    upstream.delay_ms = 300  # the first request is still upstream when the other 99 arrive
    with serve(upstream, clock) as proxy, ThreadPoolExecutor(100) as pool:
        replies = list(pool.map(lambda _: call(proxy.port, "GET", target(body="shared"), [("Host", "gw")]),
                                range(100)))
    assert upstream.count() == 1
    assert {reply.body for reply in replies} == {b"shared#1"}
    outcomes = sorted(reply.header("x-cache")[0] for reply in replies)
    assert outcomes == ["HIT"] * 99 + ["MISS"]


def test_a_stale_copy_answers_for_an_upstream_5xx_within_the_window(upstream, clock):
    with serve(upstream, clock, {"stale_if_error_s": 60}) as proxy:
        path = target("Cache-Control: max-age=5")
        get(proxy, path)
        clock.now += 30
        upstream.fail(503)
        stale = get(proxy, path)
        assert stale.status == 200 and stale.body == b"answer#1" and stale.header("x-cache") == ["STALE"]
        clock.now += 40  # past max-age + stale_if_error_s
        assert get(proxy, path).status == 503


def test_a_stale_copy_answers_when_the_upstream_cannot_be_reached(clock):
    with UpstreamServer() as upstream:
        port = upstream.port
        with serve(upstream, clock, {"stale_if_error_s": 60}) as proxy:
            path = target("Cache-Control: max-age=5")
            get(proxy, path)
            upstream.kill()
            clock.now += 10
            stale = get(proxy, path)
            assert stale.status == 200 and stale.header("x-cache") == ["STALE"] and port == upstream.port
            fresh_key = get(proxy, target(body="never seen"))
            assert fresh_key.status == 502  # nothing stored for that key: the gateway's own error


def test_purges_by_url_by_route_and_all(upstream, clock):
    with serve(upstream, clock) as proxy:
        a, b = target(body="a"), target(body="b")
        get(proxy, a)
        get(proxy, b)
        proxy.cache.post_purge(url=parse_url_key("gw.test" + a))  # as the API writes an operator's key
        assert get(proxy, a).header("x-cache") == ["MISS"] and get(proxy, b).header("x-cache") == ["HIT"]
        proxy.cache.post_purge(route="cached")
        assert get(proxy, a).header("x-cache") == ["MISS"] and get(proxy, b).header("x-cache") == ["MISS"]
        proxy.cache.post_purge()
        assert get(proxy, a).header("x-cache") == ["MISS"]


def test_hits_and_misses_are_counted_per_route_in_the_cache_and_the_recorder(upstream, clock, recorder):
    with serve(upstream, clock, recorder=recorder) as proxy:
        for _ in range(3):
            get(proxy, target())
        stats = proxy.cache.stats()
    assert stats["routes"]["cached"] == {"hits": 2, "misses": 1, "stale": 0, "stores": 1, "stored_bytes": 8}
    assert stats["entries"] == 1 and 0 < stats["bytes"] <= stats["max_bytes"]
    assert recorder.totals.cache == {("cached", "hit"): 2, ("cached", "miss"): 1}
    assert recorder.totals.cache_stored == {("cached", "entries"): 1, ("cached", "bytes"): 8}


def test_the_lru_bound_holds_on_real_traffic(upstream, clock):
    with serve(upstream, clock, store=MemoryStore(max_bytes=64_000, clock=clock)) as proxy:
        for index in range(12):
            get(proxy, f"/c/respond?bytes=7000&n={index}")
        assert proxy.cache.store.bytes <= 64_000
        assert get(proxy, "/c/respond?bytes=7000&n=11").header("x-cache") == ["HIT"]
        assert get(proxy, "/c/respond?bytes=7000&n=0").header("x-cache") == ["MISS"]


def test_a_cached_answer_is_compressed_for_each_client(upstream, clock):
    import gzip

    with serve(upstream, clock, compression={"min_bytes": 0}) as proxy:
        path = target("Content-Type: text/plain", body="x" * 3000)
        get(proxy, path, [("Accept-Encoding", "gzip")])
        zipped = get(proxy, path, [("Accept-Encoding", "gzip")])
        plain = get(proxy, path)
    assert zipped.header("x-cache") == ["HIT"] and gzip.decompress(zipped.body) == b"x" * 3000 + b"#1"
    assert plain.header("content-encoding") == [] and plain.body == b"x" * 3000 + b"#1"


def test_a_cache_in_an_unreachable_redis_degrades_to_misses(upstream, clock):
    from protocols.cache import RedisCacheStore

    store = RedisCacheStore(f"redis://127.0.0.1:{refused_port()}/0", timeout_s=0.2)
    with serve(upstream, clock, store=store) as proxy:
        first, second = get(proxy, target()), get(proxy, target())
    assert (first.status, second.status) == (200, 200)
    assert second.header("x-cache") == ["MISS"] and second.body == b"answer#2"
    assert store.failures >= 1
