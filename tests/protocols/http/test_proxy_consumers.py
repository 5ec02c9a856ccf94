"""Consumers on real traffic: ProxyApp under uvicorn with a table that carries a consumer directory, and a real
backend on loopback. API keys and JWTs resolve to consumers, the backend learns who called, limits are shared."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from protocols.auth.consumers import DIRECTORY_SETTING, ConsumerDirectory, ConsumerIdentity, KeyGrant, key_digest
from tests.protocols.auth.tokens import SECRET, claims, with_pyjwt
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer

KEY = "rk_billing-key-0123456789abcdefghij"
EXPIRED = "rk_billing-expired-0123456789abcdef"
BILLING = ConsumerIdentity("billing")


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def proxy(upstream: UpstreamServer) -> Iterator[ProxyServer]:
    directory = ConsumerDirectory(
        keys={key_digest(KEY.encode()): KeyGrant(BILLING),
              key_digest(EXPIRED.encode()): KeyGrant(BILLING, expires_at=time.time() - 1)},
        subjects={"alice": BILLING})
    limit = {"limit": 2, "window_s": 60, "scope": ["consumer"]}
    routes = [route("billing", "/billing", upstream.port, auth="either", policies={"rate_limit": limit}),
              route("keys", "/keys", upstream.port, auth="key"), route("open", "/open", upstream.port)]
    with ProxyServer(routes, settings={"jwt": {"secret": SECRET}, DIRECTORY_SETTING: directory}) as server:
        yield server


def bearer_token(sub: str) -> tuple[str, str]:
    return "Authorization", "Bearer " + with_pyjwt(claims(sub=sub, aud=None), SECRET, "HS256").decode()


def test_the_backend_learns_the_consumer_and_never_sees_the_key(proxy, upstream):
    reply = proxy.call("GET", "/keys", [("X-API-Key", KEY), ("X-Consumer-Name", "admin")])
    assert reply.status == 200
    seen = upstream.requests[-1]
    assert seen.header("x-consumer-name") == ["billing"]
    assert seen.header("x-api-key") == []


def test_a_route_without_auth_never_passes_a_clients_own_consumer_name_upstream(proxy, upstream):
    assert proxy.call("GET", "/open", [("X-Consumer-Name", "admin")]).status == 200
    assert upstream.requests[-1].header("x-consumer-name") == []


def test_a_key_client_and_a_jwt_client_of_one_consumer_share_one_limit(proxy, upstream):
    assert proxy.call("GET", "/billing", [("X-API-Key", KEY)]).status == 200
    assert proxy.call("GET", "/billing", [bearer_token("alice")]).status == 200
    second_client = proxy.call("GET", "/billing", [("X-API-Key", KEY)])
    assert second_client.status == 429
    assert second_client.json()["type"] == "rate_limited"
    assert len(upstream.requests) == 2


def test_an_unknown_key_is_401_with_the_documented_body(proxy, upstream):
    reply = proxy.call("GET", "/keys", [("X-API-Key", "rk_nobody-knows-this-one")])
    assert reply.status == 401
    body = reply.json()
    assert body["type"] == "invalid_api_key" and body["request_id"] == reply.header("x-request-id")[0]
    assert reply.header("www-authenticate") == ['ApiKey header="X-API-Key", error="invalid_api_key"']
    assert upstream.requests == []


def test_an_expired_key_is_refused_like_an_unknown_one(proxy, upstream):
    reply = proxy.call("GET", "/keys", [("Authorization", "Bearer " + EXPIRED)])
    assert (reply.status, reply.json()["type"]) == (401, "invalid_api_key")


def test_a_request_without_a_key_is_asked_for_one(proxy, upstream):
    reply = proxy.call("GET", "/keys")
    assert (reply.status, reply.json()["type"]) == (401, "unauthorized")
    assert "X-API-Key" in reply.json()["error"]
