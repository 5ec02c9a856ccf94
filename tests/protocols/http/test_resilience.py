"""Backends that die, hang, fail and recover, behind a real proxy: what clients notice, and what backends see."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from protocols import breakers
from tests.support.load import Load
from tests.support.proxy import ProxyServer, pool_route
from tests.support.upstream import BlackholeListener, UpstreamServer


class FakeClock:
    """The proxy's resilience clock (breakers, budgets), moved by hand; socket timeouts still run in real time."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def upstreams() -> Iterator[list[UpstreamServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(UpstreamServer()) for _ in range(3)]


def ports(servers: list[UpstreamServer]) -> list[int]:
    return [server.port for server in servers]


def breaker_states(route: str) -> dict[str, str]:
    return {row.backend: row.state for row in breakers.snapshot() if row.route == route}


def test_killing_one_of_three_backends_under_load_costs_the_clients_nothing(upstreams):
    victim = upstreams[1]
    with ProxyServer([pool_route("kill", "/kill", ports(upstreams))]) as proxy:
        killed_at: list[float] = []

        def kill_at_one_second(elapsed: float) -> None:
            if elapsed >= 1.0 and not killed_at:
                victim.kill()
                killed_at.append(elapsed)

        outcomes = Load(proxy.port, "/kill", threads=6, seconds=3.0).run(kill_at_one_second)
        states = breaker_states("kill")
    failures = [outcome for outcome in outcomes if outcome.status != 200]
    assert killed_at and len(outcomes) > 300
    assert failures == []  # refused and reset attempts went to another backend
    assert states[f"http://127.0.0.1:{victim.port}"] == "open"
    served_after = sum(1 for outcome in outcomes if json.loads(outcome.body)["port"] == victim.port
                       and outcome.started > outcomes[0].started + killed_at[0] + 0.1)
    assert served_after == 0


def test_a_hung_backend_is_cut_off_by_its_read_timeout_and_its_breaker_opens(upstreams):
    hung = upstreams[0]
    hung.hang = True
    clock = FakeClock()
    spec = pool_route("hung", "/hung", [hung.port], read_timeout=0.2, policies={"retry": {"max_retries": 0}})
    with ProxyServer([spec], clock=clock) as proxy:
        started = time.monotonic()
        replies = [proxy.call("GET", "/hung") for _ in range(5)]
        elapsed = time.monotonic() - started
        assert [reply.json()["type"] for reply in replies] == ["upstream_timeout"] * 5
        assert elapsed < 5 * 0.2 + 1.0
        assert hung.wait_until(lambda server: server.closed_connections == 5, 2)  # each one cut off
        fail_fast = proxy.call("GET", "/hung")
        assert fail_fast.status == 503 and fail_fast.json()["type"] == "no_backend"
        assert hung.count() == 5  # the open breaker sent nothing


def test_requests_skip_a_hung_backend_once_its_breaker_is_open(upstreams):
    hung = upstreams[0]
    hung.hang = True
    clock = FakeClock()
    spec = pool_route("skip", "/skip", ports(upstreams), read_timeout=0.2)
    with ProxyServer([spec], clock=clock) as proxy:
        statuses = [proxy.call("GET", "/skip").status for _ in range(20)]
        assert statuses == [200] * 20  # the timed-out attempts were retried on the others
        assert hung.count() == 5
        started = time.monotonic()
        assert all(proxy.call("GET", "/skip").status == 200 for _ in range(20))
        assert time.monotonic() - started < 0.2 * 20 / 2  # no more timeouts to wait for
        assert hung.count() == 5

        clock.now += 10  # open_s later: half-open, one trial
        for _ in range(3):
            proxy.call("GET", "/skip")
        assert hung.count() == 6


def test_a_recovered_backend_gets_traffic_again_after_open_s(upstreams):
    victim = upstreams[2]
    clock = FakeClock()
    spec = pool_route("recover", "/recover", ports(upstreams), policies={"circuit_breaker": {"open_s": 3}})
    with ProxyServer([spec], clock=clock) as proxy:
        victim.kill()
        assert all(proxy.call("GET", "/recover").status == 200 for _ in range(30))
        assert breaker_states("recover")[f"http://127.0.0.1:{victim.port}"] == "open"
        victim.revive()
        assert all(proxy.call("GET", "/recover").status == 200 for _ in range(9))
        assert victim.count() == 0  # still open: nobody asked it

        clock.now += 3
        served = [proxy.call("GET", "/recover").json()["port"] for _ in range(30)]
    assert served.count(victim.port) >= 8  # trials passed, breaker closed, back to its third
    assert breaker_states("recover")[f"http://127.0.0.1:{victim.port}"] == "closed"


def test_a_connect_timeout_is_retried_on_another_backend(upstreams):
    good = upstreams[0]
    with BlackholeListener() as blackhole:
        spec = pool_route("connect", "/connect", [blackhole.port, good.port], connect_timeout=0.2)
        with ProxyServer([spec]) as proxy:
            replies = [proxy.call("GET", "/connect") for _ in range(4)]
    assert [reply.status for reply in replies] == [200] * 4
    assert good.count() == 4


def test_post_is_never_retried_by_default(upstreams):
    for server in upstreams:
        server.fail(503)
    spec = pool_route("post", "/post", ports(upstreams), policies={"retry": {"retry_on_status_codes": [503],
                                                                              "max_retries": 3}})
    with ProxyServer([spec]) as proxy:
        reply = proxy.call("POST", "/post", body=b'{"order": 1}')
    assert reply.status == 503
    assert sum(server.count("POST") for server in upstreams) == 1


def test_post_is_not_retried_after_a_connection_reset_by_default(upstreams):
    spec = pool_route("reset", "/reset", ports(upstreams))
    with ProxyServer([spec]) as proxy:
        reply = proxy.call("POST", "/reset", body=b"payload")
    assert reply.json()["type"] == "upstream_reset"
    assert sum(server.count("POST") for server in upstreams) == 1


def test_post_is_retried_with_its_body_when_the_route_opts_in(upstreams):
    first, second, third = upstreams
    first.fail(503)
    third.fail(503)
    spec = pool_route("optin", "/optin", [first.port, second.port, third.port], policies={
        "retry": {"retry_on_status_codes": [503], "max_retries": 2, "retry_non_idempotent": True}})
    with ProxyServer([spec]) as proxy:
        reply = proxy.call("POST", "/optin", body=b"x" * 5000)
    assert reply.status == 200
    assert (reply.json()["port"], reply.json()["body_length"]) == (second.port, 5000)
    assert first.count("POST") == 1


def test_a_large_request_body_is_not_retried(upstreams):
    first, second, _ = upstreams
    first.fail(503)
    spec = pool_route("big", "/big", [first.port, second.port],
                      policies={"retry": {"retry_on_status_codes": [503], "max_retries": 2}})
    with ProxyServer([spec]) as proxy:
        reply = proxy.call("PUT", "/big", body=b"x" * (65 * 1024))
    assert reply.status == 503
    assert first.count() + second.count() == 1


def test_the_retry_budget_caps_amplification(upstreams):
    always_failing = upstreams[0]
    always_failing.fail(503)
    spec = pool_route("budget", "/budget", [always_failing.port], policies={
        "retry": {"retry_on_status_codes": [503], "max_retries": 3, "initial_backoff_ms": 0,
                  "budget_ratio": 0.2, "budget_min_per_s": 0},
        "circuit_breaker": {"enabled": False},
    })
    with ProxyServer([spec]) as proxy:
        outcomes = Load(proxy.port, "/budget", threads=4, seconds=5.0, max_requests=400).run()
    assert all(outcome.status == 503 for outcome in outcomes)
    amplification = always_failing.count() / len(outcomes)
    assert 1.1 < amplification <= 1.2 + 0.02  # retries happened, and stayed within the 20% budget


def test_a_retry_waits_for_the_upstreams_retry_after(upstreams):
    flaky = upstreams[0]
    flaky.fail(503, [("Retry-After", "1")], times=1)
    spec = pool_route("later", "/later", [flaky.port], policies={
        "retry": {"retry_on_status_codes": [503], "max_backoff_ms": 2000}})
    with ProxyServer([spec]) as proxy:
        started = time.monotonic()
        reply = proxy.call("GET", "/later")
        elapsed = time.monotonic() - started
    assert reply.status == 200
    assert 1.0 <= elapsed < 3.0  # waited for the Retry-After, not for a timeout


def test_a_retry_after_beyond_the_longest_backoff_goes_to_the_client(upstreams):
    flaky = upstreams[0]
    flaky.fail(503, [("Retry-After", "30")], times=1)
    spec = pool_route("notnow", "/notnow", [flaky.port], policies={"retry": {"retry_on_status_codes": [503]}})
    with ProxyServer([spec]) as proxy:
        reply = proxy.call("GET", "/notnow")
    assert reply.status == 503
    assert reply.header("retry-after") == ["30"]
    assert flaky.count() == 1


def test_503_with_retry_after_when_the_health_checks_mark_every_backend_down(upstreams):
    spec = pool_route("down", "/down", ports(upstreams))
    with ProxyServer([spec]) as proxy:
        proxy.state.install_health({backend.id: False for backend in spec.backends}, version=1)
        reply = proxy.call("GET", "/down")
    assert reply.status == 503
    assert reply.header("retry-after") == ["5"]
    assert reply.json()["type"] == "no_backend"
    assert "All 3 backends of route 'down' are unhealthy" in reply.json()["error"]
    assert sum(server.count() for server in upstreams) == 0


def test_503_with_retry_after_until_the_soonest_breaker_half_opens(upstreams):
    for server in upstreams:
        server.kill()
    clock = FakeClock()
    spec = pool_route("open", "/open", ports(upstreams), policies={
        "circuit_breaker": {"failure_threshold": 1, "open_s": 30}, "retry": {"max_retries": 0}})
    with ProxyServer([spec], clock=clock) as proxy:
        assert [proxy.call("GET", "/open").status for _ in range(3)] == [502] * 3
        clock.now += 12
        reply = proxy.call("GET", "/open")
    assert reply.status == 503
    assert reply.header("retry-after") == ["18"]
    assert "circuit breakers are open" in reply.json()["error"]


def test_a_health_verdict_takes_a_backend_out_and_back_in(upstreams):
    spec = pool_route("verdict", "/verdict", ports(upstreams))
    down = spec.backends[0]
    with ProxyServer([spec]) as proxy:
        proxy.state.install_health({down.id: False}, version=1)
        assert all(proxy.call("GET", "/verdict").json()["port"] != down.port for _ in range(9))
        proxy.state.install_health({}, version=2)
        assert down.port in {proxy.call("GET", "/verdict").json()["port"] for _ in range(9)}


def test_the_total_timeout_cuts_a_slow_exchange_off(upstreams):
    slow = upstreams[0]
    slow.delay_ms = 2000
    spec = pool_route("total", "/total", [slow.port], total_timeout=0.3, read_timeout=5)
    with ProxyServer([spec]) as proxy:
        started = time.monotonic()
        reply = proxy.call("GET", "/total")
        elapsed = time.monotonic() - started
    assert reply.status == 504
    assert reply.json()["type"] == "upstream_timeout"
    assert "total timeout of 0.3 s" in reply.json()["error"]
    assert elapsed < 1.5


def test_the_total_timeout_cuts_a_stalled_body_short(upstreams):
    spec = pool_route("stall", "/stall-mid-body", [upstreams[0].port], total_timeout=0.3, read_timeout=5)
    with ProxyServer([spec]) as proxy:
        conn = proxy.connection()
        conn.request("GET", "/stall-mid-body")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(Exception):  # noqa: B017 - IncompleteRead or a reset: the body never completes
            response.read()
        conn.close()
