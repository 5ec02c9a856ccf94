"""Guards, transformations, the response cache and compression on a real `runproxy`, configured through
import_config like an operator: what the gateway does with a route's blocks once they are saved."""
from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from routes.cache_purges import request_purge
from routes.import_export import import_config
from tests.support.gateway import Gateway, http, serving_gateway, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL", "")
CORS = {"origins": ["https://app.example.com"]}


def configure(routers: list[dict[str, Any]], **blocks: Any) -> None:
    import_config({"version": 1, "routers": routers, **blocks}, actor=None, source="test")


def http_route(name: str, path: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": path, "internal_path": "/{rest}", "methods": ["GET", "POST"],
            "backends": [{"host": "http://127.0.0.1", "port": port}], **extra}


def shaped_routes(port: int) -> list[dict[str, Any]]:
    return [
        http_route("cached", "/cached/{rest}", port, cache={"ttl_s": 60}),
        http_route("shaped", "/shaped/{rest}", port,
                   request_transformation={"headers": [{"action": "set", "name": "X-Env", "value": "prod"}]},
                   response_transformation={"headers": [{"action": "add", "name": "X-Gateway", "value": "rusta"}]},
                   compression={"enabled": True}, cors=CORS),
        http_route("private", "/private/{rest}", port, ip_rules={"allow": ["10.0.0.0/8"]}),
    ]


@pytest.fixture
def gateway(tmp_path, upstream: UpstreamServer) -> Iterator[Gateway]:
    configure(shaped_routes(upstream.port))
    with serving_gateway(tmp_path) as running:
        yield running


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def x_cache_after_purge(gateway: Gateway, target: str, route: str) -> str:
    """Purge `route` from the control plane, then the X-Cache of `target` once it is no longer a hit (5 s at most)."""
    request_purge(route=route, actor=None, source="test")
    deadline = time.monotonic() + 5
    outcome = "HIT"
    while outcome == "HIT" and time.monotonic() < deadline:
        time.sleep(0.2)
        outcome = lower(http("GET", gateway.url + target)[1])["x-cache"]
    return outcome


def test_a_cached_route_answers_the_second_request_without_the_backend(gateway, upstream):
    first = http("GET", gateway.url + "/cached/respond?body=one")
    second = http("GET", gateway.url + "/cached/respond?body=one")
    assert lower(first[1])["x-cache"] == "MISS"
    assert lower(second[1])["x-cache"] == "HIT" and second[2] == b"one"
    assert "age" in lower(second[1])
    assert upstream.count() == 1


def test_a_purge_from_the_control_plane_empties_the_running_gateways_cache(gateway, upstream):
    http("GET", gateway.url + "/cached/respond?body=two")
    assert x_cache_after_purge(gateway, "/cached/respond?body=two", "cached") == "MISS"


def test_request_and_response_rules_apply_on_the_way_through(gateway, upstream):
    status, headers, _ = http("GET", gateway.url + "/shaped/echo", headers={"X-Env": "dev"})
    assert status == 200
    assert upstream.requests[-1].header("x-env") == ["prod"]
    assert lower(headers)["x-gateway"] == "rusta"


def test_a_compressed_answer_decodes_to_the_backends_bytes(gateway):
    text = "all work and no play " * 200
    status, headers, body = http("GET", gateway.url + f"/shaped/respond?body={text.replace(' ', '%20')}"
                                 "&header=Content-Type:text/plain", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and lower(headers)["content-encoding"] == "gzip"
    assert gzip.decompress(body).decode() == text


def test_the_gateway_answers_an_allowed_cors_preflight_itself(gateway, upstream):
    status, headers, _ = http("OPTIONS", gateway.url + "/shaped/echo", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert status == 204
    assert lower(headers)["access-control-allow-origin"] == "https://app.example.com"
    assert upstream.requests == []


def test_an_address_outside_the_routes_allow_list_gets_403_and_every_answer_the_security_headers(gateway, upstream):
    status, headers, body = http("GET", gateway.url + "/private/echo")
    assert status == 403 and json.loads(body)["type"] == "client_forbidden"
    assert lower(headers)["x-content-type-options"] == "nosniff"
    assert upstream.requests == []


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite, always run in CI)")
def test_two_gateways_on_one_redis_share_their_cache_and_its_purges(tmp_path, upstream):
    name = f"shared{time.time_ns()}"
    configure([http_route(name, "/shared/{rest}", upstream.port, cache={"ttl_s": 60})])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_gateway(tmp_path / "a", extra_env={"REDIS_URL": REDIS_URL})
    second = start_gateway(tmp_path / "b", extra_env={"REDIS_URL": REDIS_URL})
    try:
        first.wait_version(1)
        second.wait_version(1)
        miss = http("GET", first.url + "/shared/respond?body=shared")
        hit = http("GET", second.url + "/shared/respond?body=shared")
        assert lower(miss[1])["x-cache"] == "MISS"
        assert lower(hit[1])["x-cache"] == "HIT" and hit[2] == b"shared"
        assert upstream.count() == 1
        assert x_cache_after_purge(second, "/shared/respond?body=shared", name) == "MISS"
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
