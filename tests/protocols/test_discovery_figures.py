"""protocols.discovery.figures: what /metrics learns about discovery, from resolutions against a real DNS server on
loopback (a hand-driven clock says when a name is due, the answers are the server's)."""
from __future__ import annotations

import asyncio

import pytest

from protocols.discovery import BackendDiscovery, DnsLookup, figures
from protocols.table import BackendSpec, DiscoverySpec, RouteSpec, RouteTable
from tests.protocols.dns.servers import ZoneServer
from tests.protocols.test_discovery import Clock
from tests.protocols.test_discovery_proxy import NAME, a_zone

NOW = 1_700_000_000.0  # the wall clock the snapshots are taken at


def table(dns: ZoneServer, *route_names: str) -> RouteTable:
    backend = BackendSpec(id=1, scheme="http", host=NAME, port=8080,
                          discovery=DiscoverySpec("a", 0.5, ("127.0.0.1", dns.port)))
    return RouteTable([RouteSpec(id=index, name=name, external_path=f"/{name}", methods=("GET",),
                                 backends=(backend,)) for index, name in enumerate(route_names, 1)], version=1)


def resolve(found: BackendDiscovery, clock: Clock) -> None:
    asyncio.run(found.refresh())
    clock.now += 1  # the next refresh finds the name due again


def lookups(found: BackendDiscovery) -> dict[tuple[str, str, str], int]:
    return {(route, name, outcome): count for route, name, outcome, count
            in figures.snapshot([found], now=NOW)["lookups"]}


@pytest.mark.parametrize(("outage", "outcome"), [
    ({"zone": {}}, "nxdomain"),
    ({"zone": {f"{NAME}.": [("TXT", 0, ['"no address here"'])]}}, "empty"),
    ({"rcode": 2}, "error"),
    ({"silent": True}, "timeout"),
])
def test_each_lookup_is_counted_by_its_outcome(outage, outcome):
    clock = Clock()
    with ZoneServer(a_zone("127.0.0.1")) as dns:
        found = BackendDiscovery(lookup=DnsLookup(), clock=clock)
        found.follow(table(dns, "api"))
        resolve(found, clock)
        for attribute, value in outage.items():
            setattr(dns, attribute, value)
        resolve(found, clock)
        resolve(found, clock)
    assert lookups(found) == {("api", NAME, "ok"): 1, ("api", NAME, outcome): 2}


def test_a_name_shows_the_addresses_it_keeps_and_when_they_changed_and_it_last_resolved():
    clock = Clock()
    with ZoneServer(a_zone("127.0.0.1", "127.0.0.2")) as dns:
        found = BackendDiscovery(lookup=DnsLookup(), clock=clock)
        found.follow(table(dns, "api"))
        changed_at = clock.now
        resolve(found, clock)
        resolve(found, clock)  # the same answer: no change
        resolved_at = clock.now
        resolve(found, clock)
        dns.rcode = 2
        resolve(found, clock)  # failed: the addresses are kept, the last success stays
    [[route, name, addresses, changed, resolved]] = figures.snapshot([found], now=NOW)["names"]
    offset = NOW - clock.now
    assert (route, name, addresses) == ("api", NAME, 2)
    assert (changed, resolved) == (changed_at + offset, resolved_at + offset)


def test_a_name_two_routes_share_is_resolved_once_and_counted_under_both():
    clock = Clock()
    with ZoneServer(a_zone("127.0.0.1")) as dns:
        found = BackendDiscovery(lookup=DnsLookup(), clock=clock)
        found.follow(table(dns, "api", "admin"))
        resolve(found, clock)
        asked = dns.count(f"{NAME}.")
    assert lookups(found) == {("admin", NAME, "ok"): 1, ("api", NAME, "ok"): 1}
    assert asked == 2  # one A and one AAAA question, once for both routes
    assert [row[:3] for row in figures.snapshot([found], now=NOW)["names"]] == [
        ["admin", NAME, 1], ["api", NAME, 1]]


def test_a_name_not_yet_resolved_shows_no_addresses_and_no_times():
    with ZoneServer(a_zone("127.0.0.1")) as dns:
        found = BackendDiscovery(lookup=DnsLookup(), clock=Clock())
        found.follow(table(dns, "api"))
    assert figures.snapshot([found], now=NOW) == {"lookups": [], "names": [["api", NAME, 0, None, None]]}


def test_every_discovery_of_the_process_is_in_its_snapshot():
    with ZoneServer(a_zone("127.0.0.1")) as dns:
        clock = Clock()
        found = BackendDiscovery(lookup=DnsLookup(), clock=clock)
        found.follow(table(dns, "registered"))
        resolve(found, clock)
    assert ["registered", NAME, "ok", 1] in figures.snapshot()["lookups"]
