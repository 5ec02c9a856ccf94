"""`anomaly_detection` through the proxy listener: synthetic traffic with injected bursts and path scans
(tests.support.anomaly_traffic) replayed request by request through a real uvicorn, each simulated client behind a
trusted proxy's X-Forwarded-For, on the replay's own clock (the data plane's injected clock), so 20 simulated
seconds take what the requests take. The backend answers each request with the status the traffic says."""
from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest

from protocols.http import parse_networks
from protocols.table import BackendSpec, RouteSpec
from tests.support.anomaly_traffic import Event, Traffic, evaluate, generate
from tests.support.proxy import ProxyServer
from tests.support.upstream import UpstreamServer


class ReplayClock:
    """The data plane's clock, set to each event's time before it is sent."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def backends() -> Iterator[list[UpstreamServer]]:
    with UpstreamServer() as main, UpstreamServer() as lane:
        yield [main, lane]


def small_traffic(seed: int) -> Traffic:
    return generate(seed, clients=60, duration_s=20.0, window_s=2.0, bursts=5, scans=5)


def anomaly_route(servers: list[UpstreamServer], **policy: Any) -> RouteSpec:
    # Every path of the traffic is one segment under /api (its slashes become "~"), answered by the backend's
    # /respond with the event's status: the detector sees each distinct path as the client sent it.
    specs = tuple(BackendSpec(id=70 + i, scheme="http", host="127.0.0.1", port=server.port)
                  for i, server in enumerate(servers))
    return RouteSpec(id=7, name="shop", external_path="/api/{path}", internal_path="/respond",
                     methods=("GET", "POST"), backends=specs[:1] if "anomaly_backend_index" not in policy else specs,
                     policies={"ai_policy": {"strategy": "anomaly_detection", "window_s": 2.0, **policy}})


def send(conn: http.client.HTTPConnection, event: Event) -> int:
    _, client, path, body_bytes, status = event
    target = "/api/" + path.removeprefix("/api/").replace("/", "~") + f"?status={status}"
    body = b"x" * body_bytes if body_bytes else None
    conn.request("POST" if body else "GET", target, body,
                 {"Host": "shop", "X-Forwarded-For": client, **({"Content-Length": str(body_bytes)} if body else {})})
    response = conn.getresponse()
    response.read()
    return response.status


def replay(route: RouteSpec, traffic: Traffic) -> tuple[list[tuple[float, str]], dict[int, int], Any]:
    """Every event through the gateway; (time and client of each request judged anomalous, statuses, the log)."""
    clock = ReplayClock()
    flags: list[tuple[float, str]] = []
    statuses: dict[int, int] = {}
    with ProxyServer([route], clock=clock, trusted_proxies=parse_networks(["127.0.0.1"])) as proxy:
        log = proxy.app.dataplane.ai.log
        conn = proxy.connection()
        try:
            for event in traffic.events:
                clock.now = 1000.0 + event[0]
                before = dict(log.anomalies)
                status = send(conn, event)
                statuses[status] = statuses.get(status, 0) + 1
                if log.anomalies != before:
                    flags.append((event[0], event[1]))
        finally:
            conn.close()
    return flags, statuses, log


@pytest.mark.parametrize("seed", [1, 2])
def test_in_shadow_mode_it_flags_the_attackers_and_not_the_crowd_and_every_request_is_served(backends, seed):
    traffic = small_traffic(seed)
    flags, statuses, log = replay(anomaly_route(backends), traffic)
    report = evaluate(traffic, flags)
    print(report.describe().splitlines()[0])
    assert report.recall >= 0.9, report.describe()
    assert report.false_positive_rate <= 0.01, report.describe()
    assert 429 not in statuses and sum(statuses.values()) == len(traffic.events)
    assert {action for (_, action) in log.anomalies} == {"shadow"}
    assert all(verdict.reasons and verdict.action == "shadow" for verdict in log.verdicts)


def test_in_enforcing_mode_without_a_lane_anomalous_requests_get_429_naming_the_reason(backends):
    traffic = small_traffic(3)
    clock = ReplayClock()
    refused: list[tuple[float, str]] = []
    bodies: list[bytes] = []
    with ProxyServer([anomaly_route(backends, mode="enforce")], clock=clock,
                     trusted_proxies=parse_networks(["127.0.0.1"])) as proxy:
        conn = proxy.connection()
        for event in traffic.events:
            clock.now = 1000.0 + event[0]
            _, client, path, body_bytes, status = event
            target = "/api/" + path.removeprefix("/api/").replace("/", "~") + f"?status={status}"
            conn.request("GET", target, headers={"Host": "shop", "X-Forwarded-For": client})
            response = conn.getresponse()
            body = response.read()
            if response.status == 429:
                refused.append((event[0], client))
                bodies.append(body)
                assert response.getheader("Retry-After")
        conn.close()
    report = evaluate(traffic, refused)
    print(report.describe().splitlines()[0])
    assert report.recall >= 0.9, report.describe()
    assert report.false_positive_rate <= 0.01, report.describe()
    assert all(b'"type": "anomalous_request"' in body for body in bodies)
    assert all(any(kind in body for kind in (b"request rate", b"distinct paths", b"error ratio", b"body size"))
               for body in bodies)


def test_in_enforcing_mode_with_a_lane_anomalous_requests_go_to_the_lane_backend(backends):
    main, lane = backends
    traffic = small_traffic(1)
    route = anomaly_route(backends, mode="enforce", anomaly_backend_index=1)
    before = len(lane.requests)
    flags, statuses, log = replay(route, traffic)
    assert 429 not in statuses
    assert {action for (_, action) in log.anomalies} == {"routed"}
    # Every request judged anomalous went to the lane; normal ones are balanced over both backends.
    routed = sum(count for (_, action), count in log.anomalies.items() if action == "routed")
    assert routed == len(flags) and routed > 0
    assert len(lane.requests) - before >= routed
