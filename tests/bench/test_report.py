"""Tests of bench/report.py: ratios to nginx and the PASS/FAIL/SKIP verdicts."""
from __future__ import annotations

from typing import Any

from bench.report import add_ratios, combine_rounds, targets


def _run(kind: str, rps: float, *, primary: bool = False, p99: float = 10.0, errors: int = 0,
         rss: float = 60.0) -> dict[str, Any]:
    return {
        "name": kind, "label": kind, "kind": kind, "primary": primary, "status": "ok",
        "requests_per_s": rps, "p99_ms": p99, "errors": errors,
        "processes": [{"pid": 1, "role": "main", "vmrss_mib": 200.0, "vmhwm_mib": 200.0},
                      {"pid": 2, "role": "worker", "vmrss_mib": rss, "vmhwm_mib": rss + 5}],
    }


MATCHING_OK = {"ok": True, "matches_per_s": 250_000}


def _verdicts(results: list[dict[str, Any]], matching: dict[str, Any] | None = MATCHING_OK) -> dict[str, Any]:
    add_ratios(results)
    return {c["target"]: c["pass"] for c in targets(results, matching)}


def test_ratios_are_relative_to_nginx_in_the_same_run() -> None:
    results = [_run("nginx", 30_000.0), _run("rusta", 7_500.0, primary=True)]
    add_ratios(results)
    assert results[1]["vs_nginx"] == 0.25


def test_a_fast_small_clean_rusta_passes_every_target() -> None:
    runs = [_run("nginx", 30_000.0), _run("rusta", 7_500.0, primary=True), _run("llm_direct", 12_000.0, p99=0.1),
            _run("rusta_llm", 2_000.0, p99=1.5), _peer("caddy_proxy", "caddy", 6_000.0, p99=12.0),
            _run("rusta_jwt_ratelimit", 6_500.0), _peer("rusta_tls", "rusta", 6_000.0, "tls"),
            _peer("caddy_tls", "caddy", 5_000.0, "tls", p99=12.0)]
    add_ratios(runs)
    verdicts = {c["target"]: c["pass"] for c in targets(runs, MATCHING_OK)}
    scaling = "2 workers vs 1 worker req/s, unpinned"
    assert all(v is True for name, v in verdicts.items() if name != scaling)


def test_an_llm_route_adding_more_than_2_ms_at_p99_fails() -> None:
    verdicts = _verdicts([_run("llm_direct", 12_000.0, p99=0.1), _run("rusta_llm", 2_000.0, p99=2.5)])
    assert verdicts["LLM route p99 over direct (ms)"] is False


def test_an_llm_route_answering_errors_fails_even_when_fast() -> None:
    verdicts = _verdicts([_run("llm_direct", 12_000.0, p99=0.1), _run("rusta_llm", 9_000.0, p99=0.2, errors=3)])
    assert verdicts["LLM route p99 over direct (ms)"] is True
    assert verdicts["LLM route non-2xx responses and socket errors"] is False


def test_the_llm_target_is_skipped_without_the_direct_run() -> None:
    verdicts = _verdicts([_run("rusta_llm", 2_000.0, p99=1.5)])
    assert verdicts["LLM route p99 over direct (ms)"] is None


def test_comparisons_give_the_llm_route_over_the_provider_direct() -> None:
    from bench.report import comparisons

    runs = [_run("llm_direct", 10_000.0, p99=0.25), _run("rusta_llm", 2_500.0, p99=1.75)]
    for run in runs:
        run.update(p50_ms=0.5 if run["name"] == "rusta_llm" else 0.125)
    compared = comparisons(runs)
    assert compared["llm_p99_over_direct_ms"] == 1.5
    assert compared["llm_p50_over_direct_ms"] == 0.375
    assert compared["llm_ratio_to_direct"] == 0.25


def test_the_rss_target_looks_at_workers_not_the_supervisor() -> None:
    verdicts = _verdicts([_run("nginx", 30_000.0), _run("rusta", 7_500.0, primary=True, rss=130.0)])
    assert verdicts["Rusta worker VmRSS (MiB)"] is False


def test_a_rusta_that_answers_errors_fails_even_when_fast() -> None:
    verdicts = _verdicts([_run("nginx", 30_000.0), _run("rusta", 29_000.0, primary=True, errors=5)])
    assert verdicts["Rusta non-2xx responses and socket errors"] is False


def test_targets_are_skipped_when_rusta_did_not_run() -> None:
    skipped = {"name": "rusta", "kind": "rusta", "primary": True, "status": "skipped", "reason": "no runproxy"}
    verdicts = _verdicts([_run("nginx", 30_000.0), skipped], matching=None)
    assert set(verdicts.values()) == {None}


def test_rounds_combine_to_the_median_figure_and_the_summed_errors() -> None:
    rounds = [_run("rusta", rps, p99=p99, errors=e) | {"requests": 10, "non_2xx": e, "cpu_us_per_request": 50.0}
              for rps, p99, e in ((7_000.0, 30.0, 0), (9_000.0, 9.0, 1), (8_000.0, 12.0, 0))]
    combined = combine_rounds(rounds)
    assert combined["requests_per_s"] == 8_000.0
    assert combined["p99_ms"] == 12.0
    assert combined["errors"] == 1
    assert len(combined["rounds"]) == 3


def test_one_failed_round_fails_the_scenario() -> None:
    failed = {"status": "failed", "reason": "runproxy exited"}
    assert combine_rounds([_run("rusta", 8_000.0), failed])["status"] == "failed"


def test_comparisons_give_recording_overhead_jwt_ratio_and_slow_backend_p99() -> None:
    from bench.report import comparisons

    runs = [_run("rusta", 6_000.0, primary=True), _run("rusta_no_recording", 6_250.0),
            _run("rusta_jwt_ratelimit", 4_500.0), _run("slow_round_robin", 5_000.0, p99=24.0),
            _run("slow_latency_aware", 5_000.0, p99=6.0)]
    for run in runs:
        run.update(cpu_us_per_request=150.0, p50_ms=2.0, p90_ms=4.0)
    compared = comparisons(runs)
    assert compared["recording_ratio"] == 0.96 and compared["recording_overhead_pct"] == 4.0
    assert compared["jwt_ratelimit_ratio"] == 0.75
    assert compared["slow_backend_p99_ms"] == {"slow_round_robin": 24.0, "slow_latency_aware": 6.0}
    assert compared["slow_backend_p99_ratio"] == 0.25


def test_comparisons_are_none_without_their_runs() -> None:
    from bench.report import comparisons

    compared = comparisons([_run("rusta", 6_000.0, primary=True)])
    assert compared["recording_ratio"] is None and compared["jwt_ratelimit_ratio"] is None
    assert compared["llm_p99_over_direct_ms"] is None


def _peer(name: str, kind: str, rps: float, group: str = "http1", p99: float = 10.0) -> dict[str, Any]:
    return _run(kind, rps, p99=p99) | {"name": name, "group": group}


def _edge(results: list[dict[str, Any]], cpus: int = 2) -> dict[str, dict[str, Any]]:
    from bench.report import edge_targets

    return {c["target"]: c for c in edge_targets(results, cpus=cpus)}


def test_ratios_compare_runs_within_their_group_only() -> None:
    runs = [_peer("nginx_proxy", "nginx", 40_000.0), _peer("caddy_proxy", "caddy", 8_000.0),
            _peer("nginx_tls", "nginx", 20_000.0, "tls"), _peer("caddy_tls", "caddy", 5_000.0, "tls"),
            _peer("rusta_tls", "rusta", 6_000.0, "tls"), _peer("grpc_direct", "grpc_direct", 2_000.0, "grpc")]
    add_ratios(runs)
    tls_run = runs[4]
    assert (tls_run["vs_nginx"], tls_run["vs_caddy"]) == (0.3, 1.2)
    assert runs[5]["vs_nginx"] is None and runs[5]["vs_caddy"] is None


def test_rusta_slower_than_caddy_fails_and_faster_passes() -> None:
    checks = _edge([_peer("rusta", "rusta", 5_000.0), _peer("caddy_proxy", "caddy", 6_000.0),
                    _peer("rusta_tls", "rusta", 6_600.0, "tls"), _peer("caddy_tls", "caddy", 6_000.0, "tls")])
    assert checks["Rusta req/s vs Caddy, HTTP/1.1"]["pass"] is False
    assert checks["Rusta req/s vs Caddy, TLS"]["pass"] is True
    assert checks["Rusta req/s vs Caddy, TLS"]["value"] == 1.1


def test_rusta_faster_than_caddy_with_a_worse_p99_fails_the_p99_target() -> None:
    checks = _edge([_peer("rusta", "rusta", 7_000.0, p99=15.0), _peer("caddy_proxy", "caddy", 6_000.0, p99=12.0)])
    assert checks["Rusta req/s vs Caddy, HTTP/1.1"]["pass"] is True
    assert checks["Rusta p99 / Caddy p99, HTTP/1.1"]["pass"] is False
    assert checks["Rusta p99 / Caddy p99, HTTP/1.1"]["value"] == 1.25


def test_the_caddy_targets_are_skipped_when_either_run_is_missing() -> None:
    checks = _edge([_peer("caddy_tls", "caddy", 6_000.0, "tls"),
                    {"name": "rusta_tls", "kind": "rusta", "status": "skipped", "reason": "no --tls-port"}])
    assert checks["Rusta req/s vs Caddy, TLS"]["pass"] is None
    assert checks["Rusta p99 / Caddy p99, TLS"]["pass"] is None


def test_jwt_with_redis_rate_limit_below_0_8_of_the_plain_route_fails() -> None:
    assert _edge([_run("rusta", 10_000.0), _run("rusta_jwt_ratelimit", 7_900.0)])[
        "JWT + Redis rate limit req/s vs plain route"]["pass"] is False
    assert _edge([_run("rusta", 10_000.0), _run("rusta_jwt_ratelimit", 8_000.0)])[
        "JWT + Redis rate limit req/s vs plain route"]["pass"] is True


def test_scaling_is_shown_but_not_judged_on_two_cores() -> None:
    runs = [_run("rusta_workers_1", 10_000.0), _run("rusta_workers_2", 15_000.0)]
    check = _edge(runs, cpus=2)["2 workers vs 1 worker req/s, unpinned"]
    assert check["value"] == 1.5 and check["pass"] is None
    assert "2 cores" in check["note"]


def test_scaling_is_judged_against_1_7_on_four_cores() -> None:
    low = [_run("rusta_workers_1", 10_000.0), _run("rusta_workers_2", 16_000.0)]
    high = [_run("rusta_workers_1", 10_000.0), _run("rusta_workers_2", 17_500.0)]
    assert _edge(low, cpus=4)["2 workers vs 1 worker req/s, unpinned"]["pass"] is False
    assert _edge(high, cpus=4)["2 workers vs 1 worker req/s, unpinned"]["pass"] is True


def test_comparisons_give_the_grpc_route_over_the_backend_and_the_scaling_ratio() -> None:
    from bench.report import comparisons

    runs = [_run("grpc_direct", 2_000.0, p99=20.0), _run("rusta_grpc", 1_500.0, p99=32.5),
            _run("rusta_workers_1", 8_000.0), _run("rusta_workers_2", 12_000.0)]
    compared = comparisons(runs)
    assert compared["grpc_ratio_to_direct"] == 0.75
    assert compared["grpc_p99_over_direct_ms"] == 12.5
    assert compared["two_worker_scaling"] == 1.5
