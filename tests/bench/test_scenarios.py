"""Tests of bench/scenarios.py: names, report groups, and the routes of the issue 17 runs."""
from __future__ import annotations

from bench.scenarios import GROUP_TITLES, SCENARIOS, Context

CTX = Context(upstream_port=9101, slow_ports=(9111, 9112, 9113), grpc_port=9105)
ALL = {s.name: s for s in (make(CTX) for make in SCENARIOS)}


def test_scenario_names_are_unique() -> None:
    assert len(ALL) == len(SCENARIOS)


def test_every_group_has_a_title_and_its_peers_for_the_ratios() -> None:
    for scenario in ALL.values():
        assert scenario.group in GROUP_TITLES
    for group in ("http1", "tls", "h2c", "h2"):
        kinds = {s.kind for s in ALL.values() if s.group == group}
        assert {"nginx", "caddy", "rusta"} <= kinds, group


def test_the_tls_and_http2_runs_use_their_tools() -> None:
    assert all(ALL[name].tls and ALL[name].tool == "wrk" for name in ("nginx_tls", "caddy_tls", "rusta_tls"))
    assert all(ALL[name].tool == "h2load" and not ALL[name].tls for name in ("nginx_h2c", "caddy_h2c", "rusta_h2c"))
    assert all(ALL[name].tool == "h2load" and ALL[name].tls for name in ("nginx_h2", "caddy_h2", "rusta_h2"))


def test_the_grpc_route_forwards_the_method_path_to_the_grpc_backend() -> None:
    router = ALL["rusta_grpc"].routes["routers"][0]  # type: ignore[index]
    assert router["protocol"] == "grpc"
    assert router["external_path"] == "/bench.Echo/{method}" and "internal_path" not in router
    assert ALL["rusta_grpc"].path == "/bench.Echo/Call"
    assert router["backends"] == [{"host": "http://127.0.0.1", "port": 9105, "weight": 1}]


def test_the_scaling_pair_differs_only_in_workers_and_is_unpinned() -> None:
    one, two = ALL["rusta_workers_1"], ALL["rusta_workers_2"]
    assert (one.workers, two.workers) == (1, 2)
    assert not one.pinned and not two.pinned
    assert one.routes == two.routes and one.path == two.path
