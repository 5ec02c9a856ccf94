"""Tests of bench/match_bench.py: the route set and request stream it measures the matcher on."""
from __future__ import annotations

from bench.match_bench import build_specs, build_stream, run, verify
from protocols.table import RouteTable


def test_it_builds_a_thousand_routes_half_with_parameters() -> None:
    specs = build_specs()
    assert len(specs) == 1000
    assert sum(1 for s in specs if "{" in s.external_path) == 500


def test_the_stream_mixes_static_parameter_and_unknown_paths() -> None:
    specs = build_specs()
    static_names = {s.name for s in specs if "{" not in s.external_path}
    stream = build_stream(specs, size=2000)
    statics = sum(1 for p in stream if p.expected in static_names)
    misses = sum(1 for p in stream if p.expected is None)
    params = len(stream) - statics - misses
    assert 800 < statics < 1100
    assert 800 < params < 1100
    assert 0 < misses < 200


def test_every_path_of_the_stream_resolves_to_its_route() -> None:
    specs = build_specs()
    assert verify(RouteTable(specs, version=1), build_stream(specs)) == []


def test_a_short_run_reports_a_rate_and_a_verdict() -> None:
    result = run(seconds=0.05, warmup=0.0, slices=2)
    assert result["ok"] is True
    assert result["matches_per_s"] > 0
    assert isinstance(result["pass"], bool)
