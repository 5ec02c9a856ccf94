"""protocols.discovery: a backend's `discovery` key compiled, names resolved on their interval (a fake DNS and clock),
failures keeping the last addresses, and the plan balancing over what the names resolved to."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from protocols.balancing import Balancing
from protocols.block_errors import BlockError
from protocols.dataplane import DataPlane, ProxyOptions
from protocols.discovery import (
    NOTHING_DISCOVERED,
    BackendDiscovery,
    Discovered,
    DiscoveryError,
    Endpoint,
    Service,
    Target,
    discovery_spec,
)
from protocols.http.access import AccessControl
from protocols.plan import build_plan
from protocols.table import EMPTY_TABLE, BackendSpec, DiscoverySpec, LiveTable, RouteSpec, RouteTable

RESOLVER = ("127.0.0.1", 5353)


class FakeDns:
    """Answers from dicts the test changes; a name in `failing` fails, one in `hanging` never answers."""

    def __init__(self) -> None:
        self.a: dict[str, list[str]] = {}
        self.srv: dict[str, list[Service]] = {}
        self.failing: set[str] = set()
        self.hanging: set[str] = set()
        self.asked: list[tuple[str, str, Any]] = []

    async def addresses(self, name: str, resolver: Any, timeout: float) -> list[str]:
        return await self._answer("a", name, resolver, self.a)

    async def services(self, name: str, resolver: Any, timeout: float) -> list[Service]:
        return await self._answer("srv", name, resolver, self.srv)

    async def _answer(self, kind: str, name: str, resolver: Any, records: dict[str, Any]) -> Any:
        self.asked.append((kind, name, resolver))
        if name in self.hanging:
            await asyncio.Event().wait()
        if name in self.failing:
            raise DiscoveryError(f"{name}: SERVFAIL")
        return list(records.get(name, []))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def discovered_backend(host: str, kind: str = "a", *, port: int = 8080, weight: int = 1, backend_id: int = 1,
                       interval_s: float = 5.0) -> BackendSpec:
    return BackendSpec(id=backend_id, scheme="http", host=host, port=port, weight=weight,
                       discovery=DiscoverySpec(kind, interval_s, RESOLVER))


def table_of(*backends: BackendSpec, route_id: int = 1, **extra: Any) -> RouteTable:
    spec = RouteSpec(id=route_id, name="api", external_path="/api", methods=("GET",), backends=backends, **extra)
    return RouteTable([spec], version=1)


def discovery(dns: FakeDns, clock: Clock | None = None, **options: Any) -> BackendDiscovery:
    return BackendDiscovery(lookup=dns, clock=clock or Clock(), **options)


def refresh(found: BackendDiscovery) -> bool:
    return asyncio.run(found.refresh())


def urls(found: BackendDiscovery, table: RouteTable) -> list[str]:
    return [backend.url for backend in found.current.backends(table.routes[0])]


# --- The key ---------------------------------------------------------------------------------------------------

def test_a_key_left_out_takes_its_default():
    assert discovery_spec({"type": "srv"}) == DiscoverySpec("srv", 5.0, None)
    assert discovery_spec(None) is None


@pytest.mark.parametrize(("text", "nameserver"), [
    ("10.0.0.2", ("10.0.0.2", 53)), ("127.0.0.1:8600", ("127.0.0.1", 8600)), ("::1", ("::1", 53)),
    ("[fd00::53]:5353", ("fd00::53", 5353)),
])
def test_a_resolver_is_an_address_with_an_optional_port(text, nameserver):
    assert discovery_spec({"type": "a", "resolver": text}) == DiscoverySpec("a", 5.0, nameserver)


def test_every_bad_key_is_refused_at_its_path():
    with pytest.raises(BlockError) as caught:
        discovery_spec({"type": "txt", "interval_s": 0.1, "resolver": "dns.internal", "ttl": 3})
    assert set(caught.value.errors) == {"type", "interval_s", "resolver", "ttl"}
    assert "discovery knows interval_s, resolver, type" in caught.value.errors["ttl"][0]


def test_a_key_that_is_not_an_object_is_refused_as_a_whole():
    with pytest.raises(BlockError) as caught:
        discovery_spec("srv")
    assert list(caught.value.errors) == [""]


# --- What a route balances over --------------------------------------------------------------------------------

def test_an_a_name_becomes_one_backend_per_address_at_its_port_and_weight():
    table = table_of(discovered_backend("api.internal", weight=3))
    target = Target("a", "api.internal", RESOLVER)
    found = Discovered({target: (Endpoint("10.0.0.1"), Endpoint("2001:db8::1"))})
    backends = found.backends(table.routes[0])
    assert [b.url for b in backends] == ["http://10.0.0.1:8080", "http://[2001:db8::1]:8080"]
    assert {(b.id, b.weight, b.discovery) for b in backends} == {(1, 3, None)}


def test_srv_records_give_their_ports_and_weights_times_the_backends():
    table = table_of(discovered_backend("_http._tcp.api.internal", "srv", weight=2))
    target = Target("srv", "_http._tcp.api.internal", RESOLVER)
    found = Discovered({target: (Endpoint("10.0.0.1", 9001, 10), Endpoint("10.0.0.2", 9002, 0))})
    assert [(b.url, b.weight) for b in found.backends(table.routes[0])] == [
        ("http://10.0.0.1:9001", 20), ("http://10.0.0.2:9002", 0)]


def test_before_its_first_answer_an_a_name_is_reached_as_it_is_and_an_srv_name_not_at_all():
    a, srv = discovered_backend("api.internal"), discovered_backend("_http._tcp.api.internal", "srv", backend_id=2)
    plain = BackendSpec(id=3, scheme="http", host="10.9.9.9", port=80)
    table = table_of(a, srv, plain)
    assert NOTHING_DISCOVERED.backends(table.routes[0]) == (a, plain)


def test_a_route_without_discovery_keeps_its_own_backends():
    table = table_of(BackendSpec(id=3, scheme="http", host="10.9.9.9", port=80))
    assert NOTHING_DISCOVERED.backends(table.routes[0]) is table.routes[0].backends


# --- Resolving on the interval ---------------------------------------------------------------------------------

def test_a_new_name_is_resolved_at_once_and_again_only_after_its_interval():
    dns, clock = FakeDns(), Clock()
    dns.a["api.internal"] = ["10.0.0.1", "10.0.0.2"]
    found = discovery(dns, clock)
    table = table_of(discovered_backend("api.internal", interval_s=2))
    found.follow(table)
    assert refresh(found) is True
    assert urls(found, table) == ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
    clock.now += 1.9
    assert refresh(found) is False and len(dns.asked) == 1
    dns.a["api.internal"] = ["10.0.0.2", "10.0.0.3"]
    clock.now += 0.1
    assert refresh(found) is True
    assert urls(found, table) == ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]


def test_the_same_answer_in_another_order_changes_nothing():
    dns = FakeDns()
    dns.a["api.internal"] = ["10.0.0.2", "10.0.0.1"]
    clock = Clock()
    found = discovery(dns, clock)
    found.follow(table_of(discovered_backend("api.internal")))
    refresh(found)
    before = found.current
    dns.a["api.internal"] = ["10.0.0.1", "10.0.0.2"]
    clock.now += 5
    assert refresh(found) is False
    assert found.current is before


def test_a_failed_resolution_keeps_the_last_addresses_and_is_counted_and_logged_once(caplog):
    dns, clock = FakeDns(), Clock()
    dns.a["api.internal"] = ["10.0.0.1"]
    found = discovery(dns, clock)
    table = table_of(discovered_backend("api.internal"))
    found.follow(table)
    refresh(found)
    dns.failing.add("api.internal")
    with caplog.at_level(logging.WARNING, logger="protocols.discovery.backends"):
        for _ in range(3):
            clock.now += 5
            assert refresh(found) is False
    assert urls(found, table) == ["http://10.0.0.1:8080"]
    [(_, status, endpoints)] = found.report()
    assert (status.failures, status.errors, endpoints) == (3, 3, (Endpoint("10.0.0.1"),))
    assert "SERVFAIL" in status.last_error
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping its 1 last known addresses" in warnings[0]


def test_an_answer_without_addresses_keeps_the_last_ones():
    dns, clock = FakeDns(), Clock()
    dns.a["api.internal"] = ["10.0.0.1"]
    found = discovery(dns, clock)
    table = table_of(discovered_backend("api.internal"))
    found.follow(table)
    refresh(found)
    dns.a["api.internal"] = []
    clock.now += 5
    refresh(found)
    assert urls(found, table) == ["http://10.0.0.1:8080"]
    assert found.report()[0][1].last_error == "api.internal has no usable address"


def test_a_resolver_that_never_answers_is_a_failure_after_the_timeout():
    dns = FakeDns()
    dns.hanging.add("api.internal")
    found = discovery(dns)
    found.follow(table_of(discovered_backend("api.internal", interval_s=0.5)))  # the shortest timeout: 1 s
    assert refresh(found) is False
    assert found.report()[0][1].last_error == "no answer within 1 s"


def test_srv_uses_the_targets_of_the_lowest_priority_at_their_addresses():
    dns = FakeDns()
    dns.srv["_http._tcp.api.internal"] = [
        Service(10, 5, 9001, "a.internal"), Service(10, 1, 9002, "b.internal"), Service(20, 1, 9003, "backup.internal")]
    dns.a.update({"a.internal": ["10.0.0.1"], "b.internal": ["10.0.0.2"], "backup.internal": ["10.0.0.3"]})
    found = discovery(dns)
    table = table_of(discovered_backend("_http._tcp.api.internal", "srv"))
    found.follow(table)
    refresh(found)
    assert [(b.url, b.weight) for b in found.current.backends(table.routes[0])] == [
        ("http://10.0.0.1:9001", 5), ("http://10.0.0.2:9002", 1)]


def test_an_srv_target_that_does_not_resolve_keeps_the_last_addresses_of_all():
    dns, clock = FakeDns(), Clock()
    dns.srv["_http._tcp.api.internal"] = [Service(0, 1, 9001, "a.internal"), Service(0, 1, 9002, "b.internal")]
    dns.a.update({"a.internal": ["10.0.0.1"], "b.internal": ["10.0.0.2"]})
    found = discovery(dns, clock)
    table = table_of(discovered_backend("_http._tcp.api.internal", "srv"))
    found.follow(table)
    refresh(found)
    dns.failing.add("b.internal")
    clock.now += 5
    refresh(found)
    assert urls(found, table) == ["http://10.0.0.1:9001", "http://10.0.0.2:9002"]


def test_link_local_addresses_are_left_out_unless_allowed():
    dns = FakeDns()
    dns.a["api.internal"] = ["169.254.169.254", "10.0.0.1"]
    table = table_of(discovered_backend("api.internal"))
    for allowed, expected in ((False, ["http://10.0.0.1:8080"]),
                              (True, ["http://10.0.0.1:8080", "http://169.254.169.254:8080"])):
        found = discovery(dns, allow_link_local=allowed)
        found.follow(table)
        refresh(found)
        assert urls(found, table) == expected


def test_a_name_the_new_table_no_longer_has_is_forgotten():
    dns = FakeDns()
    dns.a.update({"api.internal": ["10.0.0.1"], "other.internal": ["10.0.0.9"]})
    found = discovery(dns)
    found.follow(table_of(discovered_backend("api.internal"), discovered_backend("other.internal", backend_id=2)))
    refresh(found)
    found.follow(table_of(discovered_backend("api.internal")))
    assert [target.name for target, _, _ in found.report()] == ["api.internal"]
    assert list(found.current.endpoints) == [Target("a", "api.internal", RESOLVER)]


def test_one_name_shared_by_two_backends_is_resolved_once_at_the_shorter_interval():
    dns, clock = FakeDns(), Clock()
    dns.a["api.internal"] = ["10.0.0.1"]
    found = discovery(dns, clock)
    found.follow(table_of(discovered_backend("api.internal", interval_s=10),
                          discovered_backend("api.internal", port=9090, backend_id=2, interval_s=2)))
    refresh(found)
    clock.now += 2
    refresh(found)
    assert len(dns.asked) == 2


# --- The plan --------------------------------------------------------------------------------------------------

def runtime_urls(table: RouteTable, found: Discovered, balancing: Balancing) -> list[str]:
    plan = build_plan(table, AccessControl(), balancing, discovered=found)
    runtime = plan.routes[table.routes[0].id].runtime
    assert runtime is not None
    return [state.url for state in runtime.states]


def test_the_plan_balances_over_the_addresses_and_an_address_that_stays_keeps_its_breaker():
    table = table_of(discovered_backend("api.internal"))
    target = Target("a", "api.internal", RESOLVER)
    balancing = Balancing(Clock())
    first = Discovered({target: (Endpoint("10.0.0.1"), Endpoint("10.0.0.2"))})
    assert runtime_urls(table, first, balancing) == ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
    kept = balancing.board.states[(1, "http://10.0.0.2:8080")]
    second = Discovered({target: (Endpoint("10.0.0.2"), Endpoint("10.0.0.3"))})
    assert runtime_urls(table, second, balancing) == ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]
    assert balancing.board.states[(1, "http://10.0.0.2:8080")] is kept
    assert (1, "http://10.0.0.1:8080") not in balancing.board.states


def test_a_request_in_flight_on_an_address_that_went_away_is_released_without_harm():
    table = table_of(discovered_backend("api.internal"))
    target = Target("a", "api.internal", RESOLVER)
    balancing = Balancing(Clock())
    plan = build_plan(table, AccessControl(), balancing,
                      discovered=Discovered({target: (Endpoint("10.0.0.1"),)}))
    runtime = plan.routes[1].runtime
    assert runtime is not None
    lease = runtime.pick("198.51.100.7")
    build_plan(table, AccessControl(), balancing, discovered=Discovered({target: (Endpoint("10.0.0.2"),)}))
    runtime.release(lease, True, 1000.0)  # the old plan's request ends after the swap
    assert lease[0].in_flight == 0 and balancing.board.not_closed == 0


def test_a_discovered_route_with_an_ai_policy_is_planned_broken():
    from protocols.ai.routing import AiRouting
    from protocols.upstream import UpstreamClient

    table = table_of(discovered_backend("api.internal"),
                     policies={"ai_policy": {"strategy": "latency_prediction"}})
    plan = build_plan(table, AccessControl(), Balancing(), AiRouting(UpstreamClient()))
    assert plan.routes[1].broken


# --- The data plane --------------------------------------------------------------------------------------------

def test_the_data_plane_swaps_in_a_plan_of_the_same_table_when_the_addresses_change():
    dns = FakeDns()
    dns.a["api.internal"] = ["10.0.0.1"]
    state = LiveTable()
    table = table_of(discovered_backend("api.internal", interval_s=0.5))
    state.install(table)

    async def scenario() -> list[list[str]]:
        dataplane = DataPlane(ProxyOptions(state=state, access_log=False, discovery_lookup=dns))
        seen = []
        try:
            for addresses in (["10.0.0.1"], ["10.0.0.2", "10.0.0.3"]):
                dns.a["api.internal"] = addresses
                wanted = [f"http://{address}:8080" for address in addresses]
                for _ in range(200):
                    runtime = dataplane.plan.routes[1].runtime
                    if runtime is not None and [s.url for s in runtime.states] == wanted:
                        break
                    await asyncio.sleep(0.01)
                assert dataplane.plan.table is table
                seen.append([s.url for s in dataplane.plan.routes[1].runtime.states])
        finally:
            await dataplane.aclose()
        return seen

    assert asyncio.run(scenario()) == [["http://10.0.0.1:8080"], ["http://10.0.0.2:8080", "http://10.0.0.3:8080"]]


def test_a_data_plane_built_off_the_loop_plans_a_discovering_table_at_the_first_request():
    dns = FakeDns()
    dns.a["api.internal"] = ["10.0.0.1"]
    state = LiveTable()
    table = table_of(discovered_backend("api.internal"))
    state.install(table)
    dataplane = DataPlane(ProxyOptions(state=state, access_log=False, discovery_lookup=dns))
    assert dataplane.plan.table is EMPTY_TABLE  # so that the hot path's identity test calls current()

    async def first_requests() -> list[str]:
        assert dataplane.current().table is table
        for _ in range(200):
            if dataplane.plan.discovered.endpoints:
                break
            await asyncio.sleep(0.01)
        runtime = dataplane.current().routes[1].runtime
        await dataplane.aclose()
        return [s.url for s in runtime.states] if runtime is not None else []

    assert asyncio.run(first_requests()) == ["http://10.0.0.1:8080"]
