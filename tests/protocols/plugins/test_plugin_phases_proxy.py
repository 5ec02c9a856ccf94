"""The plugin phases that choose a backend (`balance`), rewrite a response body (`body`) and refuse in the gateway's
own words, and AI routing running as its route's built-in plugin; through the real proxy listener to real loopback
backends."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.plugins import BUILTIN_AI, PluginMetrics
from protocols.table import RouteSpec
from tests.support.plugin_packages import installed
from tests.support.proxy import ProxyServer, pool_route, route
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def backends() -> Iterator[tuple[UpstreamServer, UpstreamServer]]:
    with UpstreamServer() as first, UpstreamServer() as second:
        yield first, second


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[None]:
    with installed(tmp_path):
        yield


def pooled(backends: tuple[UpstreamServer, ...], policies: dict[str, Any]) -> RouteSpec:
    return pool_route("pooled", "/{rest}", [backend.port for backend in backends], policies=policies)


def chain_of(proxy: ProxyServer) -> Any:
    return next(iter(proxy.app.dataplane.current().routes.values())).plugins


def plugin_object(proxy: ProxyServer, name: str, phase: str) -> Any:
    loaded = next(plugin for plugin in chain_of(proxy).plugins if plugin.name == name)
    return loaded.methods[phase].__self__


def served_by(reply: Any) -> int:
    assert reply.status == 200, reply.body
    return int(reply.json()["port"])


def test_a_balance_plugin_chooses_the_backend_and_learns_where_each_request_went(backends, plugins) -> None:
    first, second = backends
    with ProxyServer([pooled(backends, {"plugins": [{"name": "steering"}]})]) as proxy:
        to_second = [proxy.call("GET", f"/a{i}", [("Host", "gw"), ("X-Backend-Index", "1")]) for i in range(6)]
        to_first = [proxy.call("GET", f"/b{i}", [("Host", "gw"), ("X-Backend-Index", "0")]) for i in range(6)]
        outcomes = plugin_object(proxy, "steering", "log").outcomes
    assert {served_by(reply) for reply in to_second} == {second.port}
    assert {served_by(reply) for reply in to_first} == {first.port}
    # The log phase is told the position of the backend that answered and its time (a plain method: at once).
    assert [(status, backend) for status, backend, _ in outcomes] == [(200, 1)] * 6 + [(200, 0)] * 6
    assert all(upstream_s is not None and upstream_s > 0 for _, _, upstream_s in outcomes)


def test_a_chosen_backend_behind_an_open_breaker_is_passed_over(backends, plugins) -> None:
    first, second = backends
    policies = {"plugins": [{"name": "steering"}], "circuit_breaker": {"failure_threshold": 1, "open_s": 60},
                "retry": {"max_retries": 0}}
    with ProxyServer([pooled(backends, policies)]) as proxy:
        second.fail(502, times=1)
        try:
            assert proxy.call("GET", "/x", [("Host", "gw"), ("X-Backend-Index", "1")]).status == 502
        finally:
            second.recover()
        replies = [proxy.call("GET", f"/y{i}", [("Host", "gw"), ("X-Backend-Index", "1")]) for i in range(4)]
    assert {served_by(reply) for reply in replies} == {first.port}


def test_a_balance_plugin_that_raises_leaves_the_pick_to_balancing_and_is_counted(backends, plugins) -> None:
    entry = {"name": "balance_raising", "on_error": "fail"}  # balance never fails the request, whatever on_error
    with ProxyServer([pooled(backends, {"plugins": [entry]})]) as proxy:
        metrics = chain_of(proxy).metrics = PluginMetrics()
        replies = [proxy.call("GET", f"/r{i}", [("Host", "gw")]) for i in range(10)]
    assert {reply.status for reply in replies} == {200}
    assert {served_by(reply) for reply in replies} == {backend.port for backend in backends}  # round robin
    assert metrics.errors[("balance_raising", "balance", "raised")] == 10


def test_a_body_plugin_rewrites_the_response_body_and_its_length(backends, plugins) -> None:
    first, _ = backends
    with ProxyServer([route("r", "/{rest}", first.port, policies={"plugins": [{"name": "redacting"}]})]) as proxy:
        reply = proxy.call("GET", "/respond?body=the+secret+is+out&header=ETag:%22v1%22", [("Host", "gw")])
        plain = proxy.call("GET", "/respond?body=nothing+to+hide", [("Host", "gw")])
    assert reply.status == 200 and reply.body == b"the [redacted] is out"
    assert reply.header("Content-Length") == [str(len(b"the [redacted] is out"))]
    assert not reply.header("ETag")  # it named the body the backend sent
    assert plain.body == b"nothing to hide"


def test_a_body_longer_than_the_body_phase_holds_streams_through_unchanged(backends, plugins) -> None:
    first, _ = backends
    size = (1 << 20) + 4096
    with ProxyServer([route("r", "/{rest}", first.port, policies={"plugins": [{"name": "redacting"}]})]) as proxy:
        long = proxy.call("GET", f"/stream?bytes={size}&chunked=1", [("Host", "gw")])
        short = proxy.call("GET", "/stream?bytes=1000", [("Host", "gw")])
        seen = plugin_object(proxy, "redacting", "body").seen
    assert long.status == 200 and len(long.body) == size
    assert short.status == 200 and len(short.body) == 1000
    assert seen == [1000]  # the short one went through the phase, the long one did not


def test_a_plugin_refusing_with_a_gateway_error_gets_the_gateways_json_answer(backends, plugins) -> None:
    first, _ = backends
    before = len(first.requests)
    with ProxyServer([route("r", "/{rest}", first.port, policies={"plugins": [{"name": "refusing"}]})]) as proxy:
        refused = proxy.call("GET", "/x", [("Host", "gw")])
        admitted = proxy.call("GET", "/x", [("Host", "gw"), ("X-Ticket", "1")])
    assert refused.status == 402
    assert refused.json() == {"error": "Send a ticket in X-Ticket.", "type": "ticket_required",
                              "request_id": refused.header("X-Request-ID")[0]}
    assert admitted.status == 200
    assert len(first.requests) - before == 1


def test_ai_routing_runs_as_its_routes_built_in_plugin_first_in_the_chain(backends, plugins) -> None:
    policies = {"ai_policy": {"strategy": "latency_prediction", "decision_header": True},
                "plugins": [{"name": "example", "config": {"header_value": "after-ai"}}]}
    with ProxyServer([pooled(backends, policies)]) as proxy:
        chain = chain_of(proxy)
        metrics = chain.metrics = PluginMetrics()
        replies = [proxy.call("GET", f"/r{i}", [("Host", "gw")]) for i in range(8)]
    assert [plugin.name for plugin in chain.plugins] == [BUILTIN_AI, "example"]
    assert {reply.status for reply in replies} == {200}
    assert all(reply.header("X-Rusta-AI-Decision")[0].startswith("strategy=latency_prediction; ")
               for reply in replies)
    assert metrics.calls[(BUILTIN_AI, "balance")] == 8
    assert metrics.calls[(BUILTIN_AI, "response")] == 8
    assert metrics.calls[(BUILTIN_AI, "log")] == 8  # the strategy learns each outcome
    assert metrics.calls[("example", "upstream")] == 8
    assert not metrics.errors


def test_a_route_without_ai_policy_or_plugins_runs_no_chain(backends, plugins) -> None:
    first, _ = backends
    with ProxyServer([route("r", "/{rest}", first.port)]) as proxy:
        assert proxy.call("GET", "/x", [("Host", "gw")]).status == 200
        assert chain_of(proxy) is None
