"""Plugins through the proxy listener: real uvicorn, a real loopback backend, plugins installed as packages (the
example in examples/rusta-example-plugin and faulty ones from tests.support.plugin_packages)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from protocols.plugins import PluginMetrics, snapshot
from protocols.table import RouteSpec
from tests.support.plugin_packages import installed
from tests.support.proxy import ProxyServer, Reply, route
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def backend() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[None]:
    with installed(tmp_path):
        yield


def plugged(backend: UpstreamServer, entries: list[dict[str, Any]] | None, name: str = "plugged",
            path: str = "/{rest}") -> RouteSpec:
    policies = {"plugins": entries} if entries is not None else {}
    return route(name, path, backend.port, methods=("GET", "POST"), policies=policies)


def upstream_header(reply: Reply, name: str) -> list[str]:
    assert reply.status == 200, reply.body
    return [value for key, value in reply.json()["headers"] if key.lower() == name.lower()]


def chain_of(proxy: ProxyServer) -> Any:
    plan = proxy.app.dataplane.current()
    return next(iter(plan.routes.values())).plugins


def test_the_example_plugins_header_reaches_the_upstream(backend: UpstreamServer, plugins: None) -> None:
    entry = {"name": "example", "config": {"header_value": "from-plugin"}}
    with ProxyServer([plugged(backend, [entry])]) as proxy:
        reply = proxy.call("GET", "/anything", [("Host", "gw"), ("X-Example", "from-client")])
    assert upstream_header(reply, "X-Example") == ["from-plugin"]


def test_the_example_plugin_answers_403_on_its_denied_path_without_calling_the_upstream(
        backend: UpstreamServer, plugins: None) -> None:
    entry = {"name": "example", "config": {"deny": ["/private"]}}
    before = len(backend.requests)
    with ProxyServer([plugged(backend, [entry])]) as proxy:
        refused = proxy.call("GET", "/private", [("Host", "gw")])
        served = proxy.call("GET", "/public", [("Host", "gw")])
    assert refused.status == 403 and refused.body == b"Refused by the example plugin.\n"
    assert refused.header("X-Request-ID")
    assert served.status == 200
    assert len(backend.requests) - before == 1


def test_gateway_wide_plugins_apply_to_every_route_and_a_routes_entry_replaces_one_of_the_same_name(
        backend: UpstreamServer, plugins: None) -> None:
    settings = {"plugins": [{"name": "example", "config": {"header_value": "gateway"}}]}
    routes = [plugged(backend, None, "plain", "/plain"),
              plugged(backend, [{"name": "example", "config": {"header_value": "own"}}], "own", "/own")]
    with ProxyServer(routes, settings=settings) as proxy:
        plain = proxy.call("GET", "/plain", [("Host", "gw")])
        own = proxy.call("GET", "/own", [("Host", "gw")])
    assert upstream_header(plain, "X-Example") == ["gateway"]
    assert upstream_header(own, "X-Example") == ["own"]


def test_each_phase_sees_the_request_and_the_response_head_can_be_edited(
        backend: UpstreamServer, plugins: None) -> None:
    entries = [{"name": "recording"}]
    with ProxyServer([plugged(backend, entries)]) as proxy:
        reply = proxy.call("GET", "/respond?status=201&header=X-Backend-Secret:s3cret", [("Host", "gw")])
        deadline = time.monotonic() + 2
        while not any(phase == "log" for phase, _ in plugin_seen(proxy)):
            assert time.monotonic() < deadline, "the log phase never ran"
            time.sleep(0.01)
        seen = plugin_seen(proxy)
    assert reply.status == 201 and reply.header("X-Recorded") == ["201"] and not reply.header("X-Backend-Secret")
    assert [phase for phase, _ in seen] == ["request", "access", "upstream", "response", "log"]
    request = seen[0][1]
    assert (request.method, request.path, request.query, request.route) == (
        "GET", "/respond", "status=201&header=X-Backend-Secret:s3cret", "plugged")
    assert request.header("host") == "gw" and request.client == "127.0.0.1"
    assert seen[2][1].header("x-request-id") == reply.header("X-Request-ID")[0]  # what goes upstream
    assert seen[4][1].status == 201


def plugin_seen(proxy: ProxyServer) -> list[tuple[str, Any]]:
    made = chain_of(proxy).plugins[0]
    return made.methods["request"].__self__.seen


@pytest.mark.parametrize("entry, kind", [
    ({"name": "raising"}, "raised"),
    ({"name": "sleeping", "timeout_ms": 20}, "timeout"),
])
def test_a_failing_plugin_is_answered_502_plugin_failed_under_concurrent_load_never_500(
        backend: UpstreamServer, plugins: None, entry: dict[str, Any], kind: str) -> None:
    with ProxyServer([plugged(backend, [entry])]) as proxy:
        metrics = chain_of(proxy).metrics = PluginMetrics()
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda i: proxy.call("GET", f"/r{i}", [("Host", "gw")]), range(200)))
        elapsed = time.perf_counter() - started
        healthy = proxy.call("GET", "/health")
    statuses = {reply.status for reply in replies}
    assert statuses == {502}, statuses
    assert {reply.json()["type"] for reply in replies} == {"plugin_failed"}
    assert entry["name"] in replies[0].json()["error"]
    assert metrics.errors[(entry["name"], "access", kind)] == 200
    assert healthy.status == 200
    assert elapsed < 10


def test_a_failing_plugin_with_on_error_continue_is_passed_over_and_counted(
        backend: UpstreamServer, plugins: None) -> None:
    entries = [{"name": "sleeping", "timeout_ms": 20, "on_error": "continue", "order": 1},
               {"name": "raising", "on_error": "continue", "order": 2},
               {"name": "example", "config": {"header_value": "still-here"}, "order": 3}]
    with ProxyServer([plugged(backend, entries)]) as proxy:
        metrics = chain_of(proxy).metrics = PluginMetrics()
        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda i: proxy.call("GET", f"/r{i}", [("Host", "gw")]), range(100)))
    assert {reply.status for reply in replies} == {200}
    assert {tuple(upstream_header(reply, "X-Example")) for reply in replies} == {("still-here",)}
    assert metrics.errors[("sleeping", "access", "timeout")] == 100
    assert metrics.errors[("raising", "access", "raised")] == 100
    assert metrics.errors[("raising", "response", "raised")] == 100  # response always fails open
    assert metrics.calls[("example", "upstream")] == 100
    assert ["sleeping", "access", "timeout", 100] in snapshot(metrics)["errors"]  # what /metrics can show


def test_a_plugin_that_cannot_start_leaves_its_route_answering_503_route_misconfigured(
        backend: UpstreamServer, plugins: None) -> None:
    with ProxyServer([plugged(backend, [{"name": "broken"}])]) as proxy:
        reply = proxy.call("GET", "/x", [("Host", "gw")])
    assert reply.status == 503 and reply.json()["type"] == "route_misconfigured"


def test_a_route_without_plugins_has_no_chain(backend: UpstreamServer, plugins: None) -> None:
    with ProxyServer([plugged(backend, None)]) as proxy:
        reply = proxy.call("GET", "/x", [("Host", "gw")])
        chain = chain_of(proxy)
    assert reply.status == 200 and chain is None
