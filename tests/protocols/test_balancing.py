"""Backend choice: round robin per route, fresh state per table, unknown strategies fall back."""
from __future__ import annotations

import pytest

from protocols.balancing import Balancing
from protocols.errors import NoHealthyBackend
from protocols.table import BackendSpec, RouteSpec, RouteTable

BACKENDS = tuple(BackendSpec(id=i, scheme="http", host=f"10.0.0.{i}", port=80) for i in (1, 2, 3))


def table(strategy: str = "round_robin", backends: tuple[BackendSpec, ...] = BACKENDS) -> RouteTable:
    return RouteTable([
        RouteSpec(id=1, name="a", external_path="/a", methods=("GET",), backends=backends,
                  load_balancing_strategy=strategy),
        RouteSpec(id=2, name="b", external_path="/b", methods=("GET",), backends=backends),
    ])


def picks(balancing: Balancing, routes: RouteTable, route_id: int, count: int) -> list[int]:
    route = routes.by_id[route_id]
    return [balancing.registry(routes).pick(route, "1.2.3.4")[1].id for _ in range(count)]


def test_it_takes_each_backend_in_turn():
    routes = table()
    assert picks(Balancing(), routes, 1, 7) == [1, 2, 3, 1, 2, 3, 1]


def test_it_keeps_a_separate_turn_per_route():
    balancing, routes = Balancing(), table()
    picks(balancing, routes, 1, 2)
    assert picks(balancing, routes, 2, 1) == [1]


def test_it_starts_fresh_with_a_new_table():
    balancing = Balancing()
    picks(balancing, table(), 1, 2)
    assert picks(balancing, table(), 1, 1) == [1]


def test_it_falls_back_to_round_robin_for_strategies_not_implemented_yet():
    assert picks(Balancing(), table("least_connections"), 1, 4) == [1, 2, 3, 1]


def test_it_reports_a_route_without_backends():
    routes = table(backends=())
    with pytest.raises(NoHealthyBackend, match="'a'"):
        Balancing().registry(routes).pick(routes.by_id[1], "1.2.3.4")
