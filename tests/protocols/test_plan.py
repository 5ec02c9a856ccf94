"""protocols.plan and protocols.dataplane: one plan per table, built at once, that says what each route does."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from protocols.balancing import Balancing
from protocols.dataplane import DataPlane, ProxyOptions
from protocols.dns import DOH_PATHS
from protocols.health import HEALTH_PATHS
from protocols.http.access import AccessControl
from protocols.plan import DOH, HEALTH, TablePlan, build_plan
from protocols.table import LiveTable, RouteSpec, RouteTable
from tests.protocols.auth.tokens import SECRET
from tests.support.proxy import route


def plan_of(*specs: RouteSpec, **settings: Any) -> TablePlan:
    return build_plan(RouteTable(list(specs), version=1, settings=settings), AccessControl(), Balancing())


def test_every_route_of_the_table_is_planned_at_once():
    http, ws, ftp, dns = (route("h", "/h", 9000), route("w", "/w", 9000, protocol="websocket"),
                          route("f", "/f", 9000, protocol="ftp"), route("d", "/d", 9000, protocol="dns"))
    plan = plan_of(http, ws, ftp, dns)
    assert set(plan.routes) == {http.id, ws.id, ftp.id, dns.id}
    assert plan.routes[http.id].runtime is not None and plan.routes[http.id].shaping is None
    assert plan.routes[ws.id].websocket is not None and plan.routes[ws.id].ftp is None
    assert plan.routes[ftp.id].ftp is not None and plan.routes[ftp.id].websocket is None
    assert plan.routes[dns.id].runtime is None  # its backends are resolvers, not balanced


def test_a_route_with_neither_jwt_nor_rate_limit_has_no_admission_step():
    free, locked = route("free", "/free", 9000), route("locked", "/locked", 9000, auth_required=True)
    plan = plan_of(free, locked, jwt={"secret": SECRET})
    assert plan.routes[free.id].access is None
    assert plan.routes[locked.id].access is not None


def test_a_route_whose_shaping_does_not_compile_is_planned_broken_and_logged_once(caplog):
    bad = route("bad", "/bad", 9000, policies={"cache": {"ttl_s": "forever"}})
    with caplog.at_level(logging.ERROR, logger="protocols.plan"):
        plan = plan_of(bad)
    assert plan.routes[bad.id].broken
    assert sum("'bad'" in record.getMessage() for record in caplog.records) == 1


def test_gateway_wide_guards_that_do_not_compile_fall_back_to_the_defaults_for_http_only():
    plan = plan_of(route("a", "/a", 9000), cors={"origins": ["not an origin"]})
    assert plan.unrouted_guards is None
    assert plan.unrouted is not None
    assert plan.routes[next(iter(plan.routes))].broken


def test_the_dns_over_https_paths_are_served_only_when_the_table_has_dns_routes():
    assert set(plan_of(route("a", "/a", 9000)).paths) == set(HEALTH_PATHS)
    paths = plan_of(route("d", "/d", 9000, protocol="dns")).paths
    assert {path for path, kind in paths.items() if kind == DOH} == set(DOH_PATHS)
    assert {path for path, kind in paths.items() if kind == HEALTH} == set(HEALTH_PATHS)


def test_an_exact_http_route_beats_an_ftp_prefix():
    ftp, exact = route("f", "/files", 9000, protocol="ftp"), route("h", "/files/list", 9000, methods=("GET",))
    plan = plan_of(ftp, exact)
    assert plan.ftp_route("GET", "", "/files/list") is None
    found = plan.ftp_route("POST", "", "/files/list")  # the http route does not take POST: FTP does
    assert found is not None and (found.route.id, found.subpath) == (ftp.id, "/list")


@pytest.fixture
def dataplane() -> DataPlane:
    state = LiveTable()
    state.install(RouteTable([route("a", "/a", 9000)], version=1))
    return DataPlane(ProxyOptions(state=state, access_log=False))


def test_the_data_plane_builds_a_plan_once_per_table(dataplane):
    first = dataplane.current()
    assert dataplane.current() is first
    dataplane.state.install(RouteTable([route("b", "/b", 9000)], version=2))
    second = dataplane.current()
    assert second is not first and second.table is dataplane.state.table


def test_a_new_table_keeps_the_breakers_of_the_backends_it_still_has(dataplane):
    spec = route("kept", "/kept", 9000)
    dataplane.state.install(RouteTable([spec], version=2))
    before = dataplane.current().routes[spec.id].runtime
    dataplane.state.install(RouteTable([spec], version=3))
    after = dataplane.current().routes[spec.id].runtime
    assert before is not None and after is not None and before is not after
    assert after.states[0].breaker is before.states[0].breaker


def test_a_routes_tls_block_is_compiled_into_its_plan_and_a_bad_one_breaks_the_route():
    good = route("good", "/good", 9000, policies={"tls": {"redirect_http": True, "redirect_status": 301}})
    bad = route("bad", "/bad", 9000, policies={"tls": {"redirect_status": 200}})
    plan = plan_of(good, bad)
    assert plan.routes[good.id].tls.redirect_http and plan.routes[good.id].tls.redirect_status == 301
    assert plan.routes[bad.id].broken


def test_a_websocket_route_that_wants_client_certificates_is_refused_rather_than_served_without_them():
    import trustme

    block = {"tls": {"client_certificate": "required", "client_ca": trustme.CA().cert_pem.bytes().decode()}}
    ws = route("ws", "/ws", 9000, protocol="websocket", policies=block)
    planned = plan_of(ws).routes[ws.id]
    assert planned.broken and planned.guards is None  # what refuses a WebSocket handshake


def test_a_grpc_route_may_want_client_certificates_the_proxy_checks_them_per_call():
    import trustme

    block = {"tls": {"client_certificate": "required", "client_ca": trustme.CA().cert_pem.bytes().decode()}}
    call = route("call", "/pkg.Svc/{method}", 9000, protocol="grpc", policies=block)
    planned = plan_of(call).routes[call.id]
    assert not planned.broken and planned.tls.client_certificate == "required"
