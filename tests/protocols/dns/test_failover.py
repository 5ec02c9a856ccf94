"""Several resolvers: round robin among the healthy ones, failed ones skipped for a while, all from the table."""
from __future__ import annotations

import time

import dns.rcode

from protocols.dns import DnsForwarder, DnsOptions, Resolver, resolvers_from_table
from protocols.table import BackendSpec, LiveTable, RouteSpec, RouteTable
from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import ForwarderThread, ZoneServer, closed_port, forwarder_to, silent_socket


def dns_route(route_id: int, *ports: int, weights: tuple[int, ...] = (), **extra) -> RouteSpec:
    backends = tuple(
        BackendSpec(id=route_id * 100 + i, scheme="dns", host="127.0.0.1", port=port,
                    weight=weights[i] if weights else 1)
        for i, port in enumerate(ports)
    )
    return RouteSpec(id=route_id, name=f"dns-{route_id}", external_path=f"/dns{route_id}", methods=("POST",),
                     backends=backends, protocol="dns", **extra)


def test_a_resolver_whose_port_is_closed_is_skipped_for_the_next(upstream, clock):
    down = Resolver("127.0.0.1", closed_port())
    with ForwarderThread(forwarder_to(down, upstream.resolver, clock=clock)) as running:
        assert ask(running.port, "www.example.test").answer[0][0].address == "192.0.2.1"
        assert running.forwarder.pool.is_down(down)


def test_a_silent_resolver_costs_one_timeout_then_is_skipped(upstream, clock):
    with silent_socket() as sock:
        silent = Resolver("127.0.0.1", sock.getsockname()[1])
        with ForwarderThread(forwarder_to(silent, upstream.resolver, clock=clock, timeout=0.5)) as running:
            started = time.monotonic()
            assert ask(running.port, "n1.example.test").rcode() == dns.rcode.NOERROR
            first = time.monotonic() - started
            started = time.monotonic()
            for i in range(2, 6):
                assert ask(running.port, f"n{i}.example.test").rcode() == dns.rcode.NOERROR
            later = time.monotonic() - started
    assert first >= 0.5
    assert later < 0.5  # four queries, none of them waiting for the silent resolver


def test_a_resolver_slower_than_the_timeout_is_passed_over(upstream, clock):
    with ZoneServer() as second:
        upstream.delay = 0.6
        with ForwarderThread(forwarder_to(upstream.resolver, second.resolver, clock=clock, timeout=0.3)) as running:
            response = ask(running.port, "www.example.test")
            assert running.forwarder.pool.is_down(upstream.resolver)
    assert response.answer[0][0].address == "192.0.2.1"
    assert second.count("www.example.test.") == 1


def test_a_held_down_resolver_is_tried_again_after_the_hold_down(upstream, clock):
    with ZoneServer() as second:
        first = upstream.resolver
        with ForwarderThread(forwarder_to(first, second.resolver, clock=clock, hold_down=30)) as running:
            upstream.rcode = dns.rcode.REFUSED
            ask(running.port, "n1.example.test")
            upstream.rcode = None
            for i in range(2, 6):
                ask(running.port, f"n{i}.example.test")
            asked_while_down = upstream.count()
            clock.advance(31)
            for i in range(6, 10):
                ask(running.port, f"n{i}.example.test")
    assert asked_while_down == 1
    assert upstream.count() > asked_while_down


def test_a_resolver_answering_refused_is_passed_over_for_the_next(upstream, clock):
    with ZoneServer() as second:
        upstream.rcode = dns.rcode.REFUSED
        with ForwarderThread(forwarder_to(upstream.resolver, second.resolver, clock=clock)) as running:
            response = ask(running.port, "www.example.test")
    assert response.rcode() == dns.rcode.NOERROR
    assert second.count("www.example.test.") == 1


def test_servfail_when_every_resolver_is_down(clock):
    resolvers = [Resolver("127.0.0.1", closed_port()), Resolver("127.0.0.1", closed_port())]
    with ForwarderThread(forwarder_to(*resolvers, clock=clock)) as running:
        response = ask(running.port, "www.example.test", qid=77)
        assert (response.rcode(), response.id) == (dns.rcode.SERVFAIL, 77)
        assert running.forwarder.cache.stats()["entries"] == 0


def test_queries_take_turns_between_healthy_resolvers(upstream, clock):
    with ZoneServer() as second:
        with ForwarderThread(forwarder_to(upstream.resolver, second.resolver, clock=clock)) as running:
            for i in range(1, 11):
                ask(running.port, f"n{i}.example.test")
    assert (upstream.count(), second.count()) == (5, 5)


def test_weights_share_the_queries_in_proportion(upstream, clock):
    with ZoneServer() as second:
        heavy = Resolver("127.0.0.1", upstream.port, weight=3)
        with ForwarderThread(forwarder_to(heavy, second.resolver, clock=clock)) as running:
            for i in range(1, 13):
                ask(running.port, f"n{i}.example.test")
    assert (upstream.count(), second.count()) == (9, 3)


def test_resolvers_are_the_backends_of_the_dns_routes_only():
    http = RouteSpec(id=1, name="web", external_path="/web", methods=("GET",),
                     backends=(BackendSpec(id=1, scheme="http", host="127.0.0.1", port=80),))
    table = RouteTable([http, dns_route(2, 5301, 5302), dns_route(3, 5302, 5303, priority=5)])
    resolvers = resolvers_from_table(table)
    assert [(r.host, r.port) for r in resolvers] == [("127.0.0.1", 5302), ("127.0.0.1", 5303),
                                                     ("127.0.0.1", 5301)]
    assert resolvers[0].route == "dns-3"


def test_the_forwarder_follows_a_table_swap(upstream, clock):
    with ZoneServer() as second:
        state = LiveTable()
        state.install(RouteTable([dns_route(1, upstream.port)], version=1))
        forwarder = DnsForwarder(state, options=DnsOptions(timeout=1.0), clock=clock)
        with ForwarderThread(forwarder) as running:
            ask(running.port, "n1.example.test")
            state.install(RouteTable([dns_route(1, second.port)], version=2))
            ask(running.port, "n2.example.test")
    assert (upstream.count(), second.count()) == (1, 1)


def test_a_backend_the_health_overlay_marks_down_is_asked_last(upstream, clock):
    with ZoneServer() as second:
        state = LiveTable()
        route = dns_route(1, upstream.port, second.port)
        state.install(RouteTable([route], version=1))
        state.install_health({route.backends[0].id: False}, version=1)
        forwarder = DnsForwarder(state, options=DnsOptions(timeout=1.0), clock=clock)
        with ForwarderThread(forwarder) as running:
            for i in range(1, 5):
                ask(running.port, f"n{i}.example.test")
    assert (upstream.count(), second.count()) == (0, 4)


def test_no_dns_route_gives_servfail(clock):
    forwarder = DnsForwarder(LiveTable(), options=DnsOptions(timeout=1.0), clock=clock)
    with ForwarderThread(forwarder) as running:
        assert ask(running.port, "www.example.test").rcode() == dns.rcode.SERVFAIL
