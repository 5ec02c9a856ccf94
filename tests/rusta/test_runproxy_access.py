"""JWT authentication and rate limits on a real `runproxy`, configured through import_config like an operator."""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from routes.import_export import import_config
from tests.protocols.auth.tokens import ISSUER, SECRET
from tests.support.gateway import Gateway, http, serving_gateway, start_gateway
from tests.support.upstream import UpstreamServer
from tests.support.wsbackend import WebSocketBackend

pytestmark = pytest.mark.django_db(transaction=True)

JWT_SETTINGS = {"secret": SECRET, "issuer": ISSUER, "required_scopes": ["orders:read"],
                "forward_claims": {"sub": "X-User-Id"}}


def token(scope: str = "orders:read", **claims: Any) -> str:
    payload = {"sub": "alice", "iss": ISSUER, "exp": int(time.time()) + 300, "scope": scope, **claims}
    return pyjwt.encode(payload, SECRET, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def configure(routers: list[dict[str, Any]], **blocks: Any) -> None:
    import_config({"version": 1, "routers": routers, **blocks}, actor=None, source="test")


def http_route(name: str, path: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": path, "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": port}], **extra}


@pytest.fixture
def gateway(tmp_path, upstream: UpstreamServer) -> Iterator[Gateway]:
    configure([http_route("orders", "/orders", upstream.port, auth_required=True),
               http_route("limited", "/limited", upstream.port, rate_limit={"limit": 3, "window_s": 60})],
              jwt=JWT_SETTINGS)
    with serving_gateway(tmp_path) as running:
        yield running


def test_a_request_without_a_token_is_refused_with_401_and_a_bearer_challenge(gateway, upstream):
    status, headers, body = http("GET", gateway.url + "/orders")
    assert status == 401
    assert lower(headers)["www-authenticate"] == "Bearer"
    assert json.loads(body)["type"] == "unauthorized"
    assert upstream.requests == []


def test_a_valid_token_reaches_the_backend_with_its_claims_as_headers(gateway, upstream):
    status, _, body = http("GET", gateway.url + "/orders", headers={**bearer(token()), "X-User-Id": "mallory"})
    assert status == 200
    assert upstream.requests[-1].header("x-user-id") == ["alice"]  # the client's own copy is gone


def test_a_token_without_the_required_scope_is_refused_with_403(gateway, upstream):
    status, headers, body = http("GET", gateway.url + "/orders", headers=bearer(token(scope="orders:write")))
    assert status == 403
    assert 'error="insufficient_scope"' in lower(headers)["www-authenticate"]
    assert upstream.requests == []


def test_a_token_signed_with_another_key_is_refused_with_401(gateway):
    forged = pyjwt.encode({"sub": "alice", "iss": ISSUER, "exp": int(time.time()) + 300, "scope": "orders:read"},
                          "another-secret-of-more-than-thirty-two-bytes!!", algorithm="HS256")
    status, headers, _ = http("GET", gateway.url + "/orders", headers=bearer(forged))
    assert status == 401 and 'error="invalid_token"' in lower(headers)["www-authenticate"]


def test_the_rate_limit_answers_429_after_the_limit_with_its_headers(gateway, upstream):
    remaining = []
    for _ in range(3):
        status, headers, _ = http("GET", gateway.url + "/limited")
        assert status == 200
        assert lower(headers)["ratelimit-limit"] == "3"
        remaining.append(lower(headers)["ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    status, headers, body = http("GET", gateway.url + "/limited")
    assert status == 429 and json.loads(body)["type"] == "rate_limited"
    assert 1 <= int(lower(headers)["retry-after"]) <= 60
    assert lower(headers)["ratelimit-remaining"] == "0"
    assert len(upstream.requests) == 3


def test_rejections_are_counted_in_metrics(gateway):
    for _ in range(5):
        http("GET", gateway.url + "/limited")
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        _, _, body = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
        text = body.decode()
        if 'rusta_rate_limited_total{route="limited"} 2' in text:
            return
        time.sleep(0.2)
    raise AssertionError("rusta_rate_limited_total did not reach 2:\n" + text)


def test_a_websocket_handshake_needs_the_same_token(tmp_path):
    with WebSocketBackend() as backend:
        configure([{"name": "chat", "external_path": "/ws/chat", "methods": ["GET"], "protocol": "websocket",
                    "auth_required": True, "backends": [{"host": "ws://127.0.0.1", "port": backend.port}]}],
                  jwt=JWT_SETTINGS)
        gateway = start_gateway(tmp_path)
        try:
            url = f"ws://127.0.0.1:{gateway.port}/ws/chat"
            with pytest.raises(InvalidStatus) as refused:
                connect(url, open_timeout=5)
            assert refused.value.response.status_code == 401
            assert backend.handshakes == []
            with connect(url, open_timeout=5, additional_headers=bearer(token())) as ws:
                ws.send("hi")
                assert ws.recv(timeout=5) == "hi"
            assert backend.handshakes[-1].header("x-user-id") == ["alice"]
        finally:
            assert gateway.stop() == 0


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")
def test_two_gateways_share_one_redis_limit_exactly(tmp_path):
    limit = 5
    with UpstreamServer() as upstream:
        block = {"limit": limit, "window_s": 60, "store": "redis", "scope": "global",
                 "key_prefix": f"test-{uuid.uuid4().hex}"}  # counters of earlier runs must not count
        configure([http_route("shared", "/shared", upstream.port, rate_limit=block)])
        (tmp_path / "first").mkdir()
        (tmp_path / "second").mkdir()
        first = start_gateway(tmp_path / "first")
        second = start_gateway(tmp_path / "second")
        try:
            statuses = []
            for index in range(4 * limit):
                target = first if index % 2 == 0 else second
                statuses.append(http("GET", target.url + "/shared")[0])
            assert statuses.count(200) == limit
            assert statuses.count(429) == 3 * limit
            assert len(upstream.requests) == limit
        finally:
            assert first.stop() == 0
            assert second.stop() == 0
