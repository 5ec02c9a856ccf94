"""Sanctions applied by a real proxy on loopback: blocked clients, lowered and personalized limits, shadow mode, and
what the abuse counters saw. The table is installed as the worker's refresher does (Sanctions.replace)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from protocols.abuse.counters import AUTH_FAILURES, NOT_FOUND, PATHS, REQUESTS
from protocols.abuse.sanctions import LimitRow, VerdictRow, table_of
from protocols.http.headers import parse_networks
from protocols.recorder import Recorder
from tests.support.proxy import ProxyServer, Reply, route
from tests.support.upstream import UpstreamServer

MALLORY, ALICE = "203.0.113.66", "198.51.100.7"
FEATURES = [{"name": "requests", "value": 400, "baseline": 12, "score": 31.0}]


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def serve(upstream: UpstreamServer, auth: str = "none", **policies: Any) -> ProxyServer:
    routes = [route("orders", "/orders", upstream.port, auth=auth, policies=policies),
              route("plain", "/plain", upstream.port)]
    return ProxyServer(routes, trusted_proxies=parse_networks(["127.0.0.0/8"]), recorder=Recorder())


def verdict(action: str, factor: float | None = None, client: str = f"ip:{MALLORY}", id: int = 41) -> VerdictRow:
    return VerdictRow(id, "orders", client, action, factor, time.time() + 120, "burst", FEATURES)


def get(proxy: ProxyServer, address: str, path: str = "/orders") -> Reply:
    return proxy.call("GET", path, [("X-Forwarded-For", address)])


def statuses(proxy: ProxyServer, address: str, times: int) -> list[int]:
    return [get(proxy, address).status for _ in range(times)]


def test_a_blocked_client_gets_429_client_blocked_and_others_are_served(upstream):
    with serve(upstream, abuse={"mode": "enforce"}) as proxy:
        proxy.app.sanctions.replace(table_of([verdict("block")], []), time.time())
        refused = get(proxy, MALLORY)
        assert get(proxy, ALICE).status == 200
    assert refused.status == 429
    body = refused.json()
    assert body["type"] == "client_blocked"
    assert (body["verdict_id"], body["verdict"]) == (41, "/api/verdicts/41/")
    assert body["reason"]["kind"] == "burst" and body["reason"]["feature"] == "requests"
    assert refused.header("X-Rusta-Verdict") == ["41"]
    assert 115 <= int(refused.header("Retry-After")[0]) <= 120
    assert len(upstream.requests) == 1  # only Alice's
    assert proxy.app.recorder.snapshot().abuse_actions == {("orders", "block"): 1}


def test_a_shadow_route_answers_a_blocked_client_as_before(upstream):
    with serve(upstream, abuse={"mode": "shadow"}) as proxy:
        proxy.app.sanctions.replace(table_of([verdict("block")], []), time.time())
        assert statuses(proxy, MALLORY, 3) == [200, 200, 200]
    assert proxy.app.recorder.snapshot().abuse_actions == {}


def test_a_lifted_verdict_serves_the_client_again_from_the_next_table(upstream):
    with serve(upstream, abuse={"mode": "enforce"}) as proxy:
        proxy.app.sanctions.replace(table_of([verdict("block")], []), time.time())
        assert get(proxy, MALLORY).status == 429
        proxy.app.sanctions.replace(table_of([], []), time.time())  # the refresher no longer finds it
        assert get(proxy, MALLORY).status == 200


def test_a_lowered_limit_lets_factor_times_the_limit_through_and_says_why(upstream):
    with serve(upstream, abuse={"mode": "enforce", "action": "lower"},
               rate_limit={"limit": 10, "window_s": 60}) as proxy:
        proxy.app.sanctions.replace(table_of([verdict("lower", 0.2)], []), time.time())
        mallory = [get(proxy, MALLORY) for _ in range(4)]
        alice = statuses(proxy, ALICE, 10)
    assert [reply.status for reply in mallory] == [200, 200, 429, 429]
    assert mallory[0].header("RateLimit-Limit") == ["2"]
    refused = mallory[2]
    body = refused.json()
    assert body["type"] == "rate_limited"
    assert "lowered to 2 per 60 s by verdict 41" in body["reason"]
    assert body["verdict_id"] == 41
    assert refused.header("X-Rusta-Verdict") == ["41"]
    assert alice == [200] * 10
    assert proxy.app.recorder.snapshot().abuse_actions == {("orders", "lower"): 2}


def test_an_address_under_a_lowered_limit_keeps_it_when_it_sends_a_key_nobody_sanctioned(upstream):
    with serve(upstream, abuse={"mode": "enforce", "action": "lower"},
               rate_limit={"limit": 10, "window_s": 60}) as proxy:
        proxy.app.sanctions.replace(table_of([verdict("lower", 0.2)], []), time.time())
        replies = [proxy.call("GET", "/orders", [("X-Forwarded-For", MALLORY), ("X-API-Key", "rk_passed-through")])
                   for _ in range(3)]
    assert [reply.status for reply in replies] == [200, 200, 429]
    assert replies[0].header("RateLimit-Limit") == ["2"]


def test_a_personalized_limit_holds_its_client_to_it_and_leaves_others_the_routes(upstream):
    limits = [LimitRow("orders", f"ip:{MALLORY}", 3, 60.0)]
    with serve(upstream, abuse={"personalized_limits": True}, rate_limit={"limit": 10, "window_s": 60}) as proxy:
        proxy.app.sanctions.replace(table_of([], limits), time.time())
        mallory = [get(proxy, MALLORY) for _ in range(4)]
        alice = statuses(proxy, ALICE, 10)
    assert [reply.status for reply in mallory] == [200, 200, 200, 429]
    assert "personalized limit of 3 per 60 s" in mallory[3].json()["reason"]
    assert mallory[3].header("X-Rusta-Verdict") == []
    assert alice == [200] * 10
    assert proxy.app.recorder.snapshot().abuse_actions == {("orders", "personalized"): 1}


def test_a_blocked_address_is_refused_before_its_credential_is_checked(upstream):
    with serve(upstream, abuse={"mode": "enforce"}, auth="key") as proxy:
        proxy.app.sanctions.replace(table_of([verdict("block")], []), time.time())
        blocked = proxy.call("GET", "/orders", [("X-Forwarded-For", MALLORY), ("X-API-Key", "rk_guess")])
        other = proxy.call("GET", "/orders", [("X-Forwarded-For", ALICE), ("X-API-Key", "rk_guess")])
    assert blocked.json()["type"] == "client_blocked"
    assert other.json()["type"] == "invalid_api_key"


def test_the_counters_see_refused_requests_and_only_routes_with_the_block(upstream):
    with serve(upstream, abuse={}, auth="key") as proxy:
        for index in range(3):
            proxy.call("GET", "/orders", [("X-Forwarded-For", ALICE), ("X-API-Key", f"rk_guess{index}")])
        proxy.call("GET", "/orders", [("X-Forwarded-For", MALLORY)])
        assert get(proxy, MALLORY, "/plain").status == 200
        cells = proxy.app.abuse.take(final=True).cells
    assert {route for route, _ in cells} == {"orders"}
    mallory = cells[("orders", f"ip:{MALLORY}")]
    assert (mallory[REQUESTS], mallory[AUTH_FAILURES], mallory[NOT_FOUND]) == (1, 1, 0)
    # Three guessed keys from one address: one client with three failures, as credential stuffing looks.
    assert not [client for _, client in cells if client.startswith("key:")]
    alice = cells[("orders", f"ip:{ALICE}")]
    assert (alice[REQUESTS], alice[AUTH_FAILURES], alice[PATHS]) == (3, 3, {"/orders"})


def test_without_a_rate_limit_only_clients_with_a_personalized_limit_are_limited(upstream):
    limits = [LimitRow("orders", f"ip:{MALLORY}", 2, 60.0)]
    with serve(upstream, abuse={"personalized_limits": True}) as proxy:
        proxy.app.sanctions.replace(table_of([], limits), time.time())
        mallory = statuses(proxy, MALLORY, 3)
        alice = [get(proxy, ALICE) for _ in range(15)]
    assert mallory == [200, 200, 429]
    assert [reply.status for reply in alice] == [200] * 15
    assert alice[0].header("RateLimit-Limit") == []
