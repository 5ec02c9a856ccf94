"""Discovered backends through the real proxy: a DNS server on loopback whose answers change under load, real
backends behind each address, and the proxy following them within the interval without one failed request.

Also the DNS side alone (protocols.discovery.lookup) against the same server: A/AAAA, SRV, and its failures.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

import pytest

from protocols.discovery import DiscoveryError, DnsLookup, Service
from protocols.table import BackendSpec, DiscoverySpec, RouteSpec
from tests.protocols.dns.servers import ZoneServer
from tests.support.load import Load, Outcome
from tests.support.proxy import ProxyServer
from tests.support.upstream import UpstreamServer

INTERVAL_S = 0.5
# How late after the interval a loaded machine may still be (one resolution, one plan, the event loop's turn).
SLACK_S = 0.5
NAME = "api.example.test"
SERVICE = "_http._tcp.api.example.test"
Zone = dict[str, list[tuple[str, int, list[str]]]]


def a_zone(*addresses: str) -> Zone:
    return {f"{NAME}.": [("A", 0, list(addresses))]}


def srv_zone(*services: tuple[int, int, str]) -> Zone:
    """SRV records (weight, port, target label) of priority 0; each target at 127.0.0.1."""
    zone: Zone = {f"{SERVICE}.": [("SRV", 0, [f"0 {w} {port} {label}.example.test." for w, port, label in services])]}
    for _, _, label in services:
        zone[f"{label}.example.test."] = [("A", 0, ["127.0.0.1"])]
    return zone


def discovering_route(host: str, port: int, kind: str, dns: ZoneServer) -> RouteSpec:
    backend = BackendSpec(id=1, scheme="http", host=host, port=port,
                          discovery=DiscoverySpec(kind, INTERVAL_S, ("127.0.0.1", dns.port)))
    return RouteSpec(id=1, name="api", external_path="/api", methods=("GET",), backends=(backend,))


def served_by(outcome: Outcome) -> str:
    """Which backend answered: the Host the proxy sent it (`127.0.0.2:PORT`), as its echo shows."""
    return host_in(outcome.body)


def host_in(echo: bytes) -> str:
    headers = {name.lower(): value for name, value in json.loads(echo)["headers"]}
    return str(headers["host"])


def warmed_up(proxy: ProxyServer, expected: str, timeout: float = 5.0) -> None:
    """Until the first answer of DNS, the backend has no address: wait until it is served by `expected`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = proxy.call("GET", "/api")
        if reply.status == 200 and f'"{expected}"' in reply.body.decode():
            return
        time.sleep(0.02)
    raise AssertionError(f"the proxy never reached {expected}")


@contextmanager
def a_record_setup() -> Iterator[tuple[ZoneServer, ProxyServer, UpstreamServer, UpstreamServer]]:
    """Two backends on one port of two loopback addresses, an A name at the first, and a proxy following it."""
    with ExitStack() as stack:
        first = stack.enter_context(UpstreamServer())
        second = stack.enter_context(UpstreamServer(host="127.0.0.2", port=first.port))
        dns = stack.enter_context(ZoneServer(a_zone("127.0.0.1")))
        proxy = stack.enter_context(ProxyServer([discovering_route(NAME, first.port, "a", dns)]))
        warmed_up(proxy, f"127.0.0.1:{first.port}")
        yield dns, proxy, first, second


def under_load(proxy: ProxyServer, at: float, change: Any, seconds: float = 3.5) -> tuple[list[Outcome], float]:
    """Four clients on keep-alive connections for `seconds`; `change()` runs `at` seconds in. Returns the outcomes
    and when the change happened (monotonic)."""
    changed: list[float] = []

    def during(elapsed: float) -> None:
        if elapsed >= at and not changed:
            change()
            changed.append(time.monotonic())

    outcomes = Load(proxy.port, "/api", threads=4, seconds=seconds).run(during)
    assert changed, "the load ended before the change"
    return outcomes, changed[0]


def lag_after(outcomes: list[Outcome], changed_at: float, old: str) -> float:
    """How long after the change requests still started towards the `old` backend (0: none did)."""
    late = [o.started for o in outcomes if o.started >= changed_at and served_by(o) == old]
    return max(late) - changed_at if late else 0.0


# --- Through the proxy -----------------------------------------------------------------------------------------

def test_an_a_name_that_moves_to_another_address_is_followed_within_the_interval_without_a_failed_request():
    with a_record_setup() as (dns, proxy, first, second):
        outcomes, changed_at = under_load(proxy, 1.0, lambda: setattr(dns, "zone", a_zone("127.0.0.2")))
    old, new = f"127.0.0.1:{first.port}", f"127.0.0.2:{second.port}"
    assert [o.status for o in outcomes if o.status != 200] == []
    assert lag_after(outcomes, changed_at, old) <= INTERVAL_S + SLACK_S
    after = [served_by(o) for o in outcomes if o.started > changed_at + INTERVAL_S + SLACK_S]
    assert after and set(after) == {new}
    print(f"\n{len(outcomes)} requests, lag {lag_after(outcomes, changed_at, old) * 1000:.0f} ms")


def test_an_address_that_appears_gets_traffic_and_one_that_goes_away_is_stopped_after_it_left_without_a_failure():
    with a_record_setup() as (dns, proxy, first, second):
        old, new = f"127.0.0.1:{first.port}", f"127.0.0.2:{second.port}"
        dns.zone = a_zone("127.0.0.1", "127.0.0.2")
        time.sleep(INTERVAL_S + SLACK_S)
        both = {host_in(proxy.call("GET", "/api").body) for _ in range(20)}
        assert both == {old, new}

        def leave_then_die() -> None:
            dns.zone = a_zone("127.0.0.2")
            # The old instance is shut down once the interval has passed, as an orchestrator would.
            threading.Timer(INTERVAL_S + SLACK_S, first.kill).start()

        outcomes, changed_at = under_load(proxy, 0.5, leave_then_die, seconds=3.0)
    assert [o.status for o in outcomes if o.status != 200] == []
    assert {served_by(o) for o in outcomes if o.started > changed_at + INTERVAL_S + SLACK_S} == {new}


def test_a_request_in_flight_on_an_address_that_went_away_finishes():
    with a_record_setup() as (dns, proxy, first, second):
        first.delay_ms = 2000
        seen = first.count()
        slow: list[int] = []
        request = threading.Thread(target=lambda: slow.append(proxy.call("GET", "/api").status))
        request.start()
        assert first.wait_until(lambda server: server.count() > seen, 5)
        dns.zone = a_zone("127.0.0.2")
        time.sleep(INTERVAL_S + SLACK_S)
        moved = host_in(proxy.call("GET", "/api").body)
        still_in_flight = request.is_alive()
        request.join(10)
    assert moved == f"127.0.0.2:{second.port}" and still_in_flight
    assert slow == [200]  # answered by the address that had gone away, after the proxy had moved on


def test_srv_records_that_change_port_are_followed_without_a_failed_request():
    with ExitStack() as stack:
        first = stack.enter_context(UpstreamServer())
        second = stack.enter_context(UpstreamServer())
        dns = stack.enter_context(ZoneServer(srv_zone((1, first.port, "a"))))
        proxy = stack.enter_context(ProxyServer([discovering_route(SERVICE, 80, "srv", dns)]))
        warmed_up(proxy, f"127.0.0.1:{first.port}")
        outcomes, changed_at = under_load(proxy, 1.0, lambda: setattr(dns, "zone", srv_zone((1, second.port, "b"))))
    assert [o.status for o in outcomes if o.status != 200] == []
    assert lag_after(outcomes, changed_at, f"127.0.0.1:{first.port}") <= INTERVAL_S + SLACK_S
    assert {served_by(o) for o in outcomes if o.started > changed_at + INTERVAL_S + SLACK_S} == {
        f"127.0.0.1:{second.port}"}


def test_srv_weights_share_the_traffic_under_the_weighted_strategy():
    with ExitStack() as stack:
        heavy = stack.enter_context(UpstreamServer())
        light = stack.enter_context(UpstreamServer())
        dns = stack.enter_context(ZoneServer(srv_zone((3, heavy.port, "heavy"), (1, light.port, "light"))))
        route = replace(discovering_route(SERVICE, 80, "srv", dns), load_balancing_strategy="weighted")
        proxy = stack.enter_context(ProxyServer([route]))
        warmed_up(proxy, f"127.0.0.1:{heavy.port}")
        heavy_before, light_before = heavy.count(), light.count()
        for _ in range(40):
            assert proxy.call("GET", "/api").status == 200
    assert (heavy.count() - heavy_before, light.count() - light_before) == (30, 10)


@pytest.mark.parametrize("outage", ["silent", "servfail", "nxdomain"])
def test_a_dns_outage_under_load_keeps_the_last_addresses_without_a_failed_request(outage):
    with a_record_setup() as (dns, proxy, first, second):

        def fail() -> None:
            if outage == "silent":
                dns.silent = True
            elif outage == "servfail":
                dns.rcode = 2
            else:
                dns.zone = {}

        outcomes, _ = under_load(proxy, 0.5, fail, seconds=2.5)
        asked = dns.count(f"{NAME}.")
    assert [o.status for o in outcomes if o.status != 200] == []
    assert {served_by(o) for o in outcomes} == {f"127.0.0.1:{first.port}"}
    assert asked >= 4  # it kept asking on its interval


# --- The DNS side alone ----------------------------------------------------------------------------------------

def lookup(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_name_resolves_to_its_ipv4_and_ipv6_addresses():
    with ZoneServer() as dns:
        found = lookup(DnsLookup().addresses("www.example.test", ("127.0.0.1", dns.port), 2.0))
    assert sorted(found) == ["192.0.2.1", "2001:db8::1"]


def test_an_srv_name_resolves_to_its_records():
    with ZoneServer(srv_zone((5, 9001, "a"), (1, 9002, "b"))) as dns:
        found = lookup(DnsLookup().services(SERVICE, ("127.0.0.1", dns.port), 2.0))
    assert sorted(found, key=lambda s: s.port) == [Service(0, 5, 9001, "a.example.test"),
                                                    Service(0, 1, 9002, "b.example.test")]


@pytest.mark.parametrize(("name", "switch", "says"), [
    ("nothing.example.test", {}, "does not exist"),
    ("www.example.test", {"silent": True}, "no answer"),
    ("www.example.test", {"rcode": 2}, "www.example.test A"),
])
def test_a_name_that_does_not_resolve_is_a_discovery_error(name, switch, says):
    with ZoneServer() as dns:
        for attribute, value in switch.items():
            setattr(dns, attribute, value)
        with pytest.raises(DiscoveryError) as caught:
            lookup(DnsLookup().addresses(name, ("127.0.0.1", dns.port), 1.0))
    assert says in str(caught.value)


def test_without_a_resolver_addresses_come_from_the_system():
    found = lookup(DnsLookup().addresses("localhost", None, 2.0))
    assert "127.0.0.1" in found
