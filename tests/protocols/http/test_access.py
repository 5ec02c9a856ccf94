"""protocols.http.access: which JWT policy and rate limit each route gets, and what a misconfiguration does."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protocols.errors import GatewayError
from protocols.http.access import AccessControl
from protocols.table import RouteTable
from tests.protocols.auth.tokens import SECRET
from tests.support.proxy import route

JWT = {"secret": SECRET}


def table(*specs: Any, **settings: Any) -> RouteTable:
    return RouteTable(list(specs), version=1, settings=settings)


def admit(control: AccessControl, routes: RouteTable, name: str, headers: list[tuple[bytes, bytes]] = ()) -> Any:
    compiled = next(r for r in routes.routes if r.name == name)
    access = control.compile(compiled, routes.settings)
    assert access is not None
    return asyncio.run(access.admit(list(headers), "10.0.0.1"))


def test_a_route_without_auth_or_limits_has_no_admission_step():
    routes = table(route("open", "/open", 9000), jwt=JWT)
    assert AccessControl().compile(routes.routes[0], routes.settings) is None


def test_a_route_that_requires_a_token_without_jwt_settings_is_refused_with_503():
    routes = table(route("orders", "/orders", 9000, auth_required=True))
    with pytest.raises(GatewayError) as refused:
        admit(AccessControl(), routes, "orders")
    assert (refused.value.status, refused.value.type) == (503, "route_misconfigured")


def test_a_route_whose_jwt_settings_do_not_compile_is_refused_with_503():
    routes = table(route("orders", "/orders", 9000, auth_required=True), jwt={"secret": "short"})
    with pytest.raises(GatewayError) as refused:
        admit(AccessControl(), routes, "orders")
    assert refused.value.status == 503


def test_the_gateway_wide_rate_limit_applies_to_routes_without_their_own():
    routes = table(route("a", "/a", 9000), route("b", "/b", 9000, policies={"rate_limit": {"limit": 5}}),
                   rate_limit={"limit": 2})
    control = AccessControl()
    assert admit(control, routes, "a")[1].limit == 2
    assert admit(control, routes, "b")[1].limit == 5


def test_a_routes_disabled_rate_limit_exempts_it_from_the_gateway_wide_one():
    routes = table(route("a", "/a", 9000), route("free", "/free", 9000, policies={"rate_limit": {"enabled": False}}),
                   rate_limit={"limit": 2})
    control = AccessControl()
    assert admit(control, routes, "a")[1].limit == 2
    free = next(r for r in routes.routes if r.name == "free")
    assert control.compile(free, routes.settings) is None


def test_routes_with_the_same_jwt_block_share_one_policy_across_tables():
    control = AccessControl()
    first = table(route("a", "/a", 9000, auth_required=True), route("b", "/b", 9000, auth_required=True), jwt=JWT)
    second = table(route("a", "/a", 9000, auth_required=True), jwt=dict(JWT))
    policies = {control.compile(r, t.settings).jwt for t in (first, second) for r in t.routes}  # type: ignore[union-attr]
    assert len(policies) == 1


def test_a_rate_limit_block_that_does_not_compile_leaves_the_route_unlimited():
    routes = table(route("a", "/a", 9000, policies={"rate_limit": {"limit": "many"}}))
    assert AccessControl().compile(routes.routes[0], routes.settings) is None
