"""What AI routing learned survives a table swap that leaves the route's policy and backends alone, and is
started afresh when either changes or the route goes."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from protocols.ai.routing import AiRouting
from protocols.balancing import Balancing
from protocols.http.access import AccessControl
from protocols.plan import build_plan
from protocols.table import BackendSpec, RouteSpec, RouteTable
from protocols.upstream import UpstreamClient

BACKENDS = (BackendSpec(id=1, scheme="http", host="10.0.0.1", port=80, description="general"),
            BackendSpec(id=2, scheme="http", host="10.0.0.2", port=80, description="French speakers"))
POLICY = {"strategy": "latency_prediction"}


def route(**changes: Any) -> RouteSpec:
    spec = RouteSpec(id=1, name="smart", external_path="/ask", methods=("POST",), backends=BACKENDS,
                     policies={"ai_policy": POLICY})
    return replace(spec, **changes)


def strategy_after(ai: AiRouting, *routes: RouteSpec) -> Any:
    plan = build_plan(RouteTable(list(routes), version=2), AccessControl(), Balancing(), ai)
    step = plan.routes[1].ai if 1 in plan.routes else None
    return step.strategy if step is not None else None


def test_an_edit_that_keeps_the_policy_and_backends_keeps_the_strategy_and_what_it_learned():
    ai = AiRouting(UpstreamClient())
    first = strategy_after(ai, route())
    kept = strategy_after(ai, route(read_timeout=3.0, priority=4),
                          RouteSpec(id=2, name="other", external_path="/other", methods=("GET",), backends=BACKENDS))
    assert kept is first


def test_a_changed_policy_or_backend_list_starts_a_new_strategy():
    ai = AiRouting(UpstreamClient())
    first = strategy_after(ai, route())
    changed_policy = strategy_after(ai, route(policies={"ai_policy": {**POLICY, "horizon_s": 30}}))
    assert changed_policy is not first
    changed_backends = strategy_after(ai, route(policies={"ai_policy": {**POLICY, "horizon_s": 30}},
                                                backends=BACKENDS[:1]))
    assert changed_backends is not changed_policy
    described = strategy_after(ai, route(policies={"ai_policy": {**POLICY, "horizon_s": 30}},
                                         backends=(BACKENDS[0], replace(BACKENDS[1], description="code review"))))
    assert described is not changed_backends


def test_a_removed_route_forgets_its_strategy_and_a_disabled_policy_serves_none():
    ai = AiRouting(UpstreamClient())
    first = strategy_after(ai, route())
    strategy_after(ai, RouteSpec(id=2, name="other", external_path="/other", methods=("GET",), backends=BACKENDS))
    assert strategy_after(ai, route()) is not first
    assert strategy_after(ai, route(policies={"ai_policy": {**POLICY, "enabled": False}})) is None
