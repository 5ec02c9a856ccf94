"""The bench's verdicts and output: targets, the printed table and .bench/results.json."""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from bench.scenarios import GROUP_TITLES

# The targets of the gateway on this kind of machine (see shared/PERF-ANCHORS.md for where they come from).
MIN_RATIO_TO_NGINX = 0.20
MAX_P99_MS = 25.0
MAX_WORKER_RSS_MIB = 120.0
MIN_MATCHES_PER_S = 200_000
# Issue 16: an LLM route in front of a provider answering at once adds at most this at p99 (non-streamed), over the
# same provider reached directly in the same run.
MAX_LLM_P99_OVER_DIRECT_MS = 2.0
# Issue 17: Rusta's plain route above Caddy's req/s (HTTP/1.1 and TLS) with a p99 no worse; JWT + Redis rate limit
# at >= 0.8 of the plain route; two workers >= 1.7x one, judged only where two cores are free for them.
MIN_RATIO_TO_CADDY = 1.0
MIN_JWT_RATELIMIT_RATIO = 0.8
MIN_TWO_WORKER_SCALING = 1.7
MIN_CPUS_FOR_SCALING = 4


_MEDIAN_FIELDS = ("requests_per_s", "p50_ms", "p75_ms", "p90_ms", "p99_ms", "cpu_us_per_request")


def combine_rounds(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """One scenario's result over its rounds: the median of each figure, the sum of errors, the worst memory.

    A round that did not run makes the whole scenario report that round's failure instead of a figure.
    """
    if len(outcomes) == 1:
        return outcomes[0]
    bad = next((o for o in outcomes if o["status"] != "ok"), None)
    if bad is not None:
        return bad
    combined = dict(outcomes[-1])
    for name in _MEDIAN_FIELDS:
        values = [o[name] for o in outcomes if o.get(name) is not None]
        combined[name] = round(statistics.median(values), 3) if values else None
    combined["requests"] = sum(o["requests"] for o in outcomes)
    combined["errors"] = sum(o["errors"] for o in outcomes)
    combined["non_2xx"] = sum(o["non_2xx"] for o in outcomes)
    if any("processes" in o for o in outcomes):
        combined["processes"] = max(outcomes, key=lambda o: worker_rss(o) or 0.0)["processes"]
    if any("clean_stop" in o for o in outcomes):
        combined["clean_stop"] = all(o.get("clean_stop") for o in outcomes)
    combined["rounds"] = outcomes
    return combined


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each run's req/s relative to nginx and to Caddy measured in the same run and the same group (HTTP/1.1, TLS,
    h2c...): absolute figures drift between runs, and a TLS run is only comparable with TLS runs."""
    for kind in ("nginx", "caddy"):
        peers: dict[str, dict[str, Any]] = {}
        for r in results:
            if r["kind"] == kind and r["status"] == "ok" and r["requests_per_s"]:
                peers.setdefault(r.get("group", "http1"), r)
        for result in results:
            peer = peers.get(result.get("group", "http1"))
            result[f"vs_{kind}"] = (round(result["requests_per_s"] / peer["requests_per_s"], 3)
                                    if peer is not None and result["status"] == "ok" else None)


def worker_rss(result: dict[str, Any]) -> float | None:
    """The largest VmRSS among the worker processes of a run (the main process of a forking server excluded)."""
    workers = [p for p in result.get("processes", []) if p["role"] != "main"]
    return max((p["vmrss_mib"] for p in workers), default=None)


def targets(results: list[dict[str, Any]], matching: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The checks; `pass` is None when the run they need did not happen."""
    run = next((r for r in results if r.get("primary") and r["status"] == "ok"), None)
    checks: list[dict[str, Any]] = []

    def check(name: str, value: Any, limit: str, passed: bool | None, spec: str = ",") -> None:
        shown = "-" if value is None else format(value, spec)
        checks.append({"target": name, "value": value, "shown": shown, "limit": limit, "pass": passed})

    ratio = run["vs_nginx"] if run else None
    check("Rusta req/s vs nginx", ratio, f">= {MIN_RATIO_TO_NGINX:.2f}",
          None if ratio is None else ratio >= MIN_RATIO_TO_NGINX, ".3f")
    p99 = run["p99_ms"] if run else None
    check("Rusta p99 latency (ms)", p99, f"< {MAX_P99_MS:g}", None if p99 is None else p99 < MAX_P99_MS, ".2f")
    rss = worker_rss(run) if run else None
    check("Rusta worker VmRSS (MiB)", rss, f"< {MAX_WORKER_RSS_MIB:g}",
          None if rss is None else rss < MAX_WORKER_RSS_MIB, ".1f")
    errors = run["errors"] if run else None
    # A proxy that answers 502 quickly would otherwise look fast.
    check("Rusta non-2xx responses and socket errors", errors, "= 0", None if errors is None else errors == 0)
    rate = matching.get("matches_per_s") if matching and matching.get("ok") else None
    check("route matching (matches/s)", rate, f">= {MIN_MATCHES_PER_S:,}",
          None if rate is None else rate >= MIN_MATCHES_PER_S)
    over = llm_p99_over_direct(results)
    check("LLM route p99 over direct (ms)", over, f"<= {MAX_LLM_P99_OVER_DIRECT_MS:g}",
          None if over is None else over <= MAX_LLM_P99_OVER_DIRECT_MS, "+.2f")
    llm = next((r for r in results if r["name"] == "rusta_llm" and r["status"] == "ok"), None)
    llm_errors = llm["errors"] if llm else None
    # An LLM route answering 4xx or 502 at once would otherwise pass the latency target.
    check("LLM route non-2xx responses and socket errors", llm_errors, "= 0",
          None if llm_errors is None else llm_errors == 0)
    checks.extend(edge_targets(results))
    return checks


def edge_targets(results: list[dict[str, Any]], cpus: int | None = None) -> list[dict[str, Any]]:
    """Issue 17's speed targets: Rusta against Caddy (req/s and p99, HTTP/1.1 and TLS), JWT + Redis rate limit
    against the plain route, two workers against one. `pass` is None when a run is missing or, for scaling, when
    the machine has fewer than MIN_CPUS_FOR_SCALING cores (the figure is still shown, with why)."""
    ok = {r["name"]: r for r in results if r["status"] == "ok"}
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, limit: str, passed: bool | None, note: str = "") -> None:
        shown = "-" if value is None else format(value, ".3f")
        checks.append({"target": name, "value": value, "shown": shown, "limit": limit, "pass": passed,
                       "note": note})

    for rusta, caddy, where in (("rusta", "caddy_proxy", "HTTP/1.1"), ("rusta_tls", "caddy_tls", "TLS")):
        pair = rusta in ok and caddy in ok
        rate = ratio(ok, rusta, caddy)
        check(f"Rusta req/s vs Caddy, {where}", rate, f"> {MIN_RATIO_TO_CADDY:.2f}",
              None if rate is None else rate > MIN_RATIO_TO_CADDY)
        p99 = round(ok[rusta]["p99_ms"] / ok[caddy]["p99_ms"], 3) if pair and ok[caddy]["p99_ms"] else None
        check(f"Rusta p99 / Caddy p99, {where}", p99, "<= 1.00", None if p99 is None else p99 <= 1.0)
    limited = ratio(ok, "rusta_jwt_ratelimit", "rusta")
    check("JWT + Redis rate limit req/s vs plain route", limited, f">= {MIN_JWT_RATELIMIT_RATIO:.2f}",
          None if limited is None else limited >= MIN_JWT_RATELIMIT_RATIO)
    scaling = ratio(ok, "rusta_workers_2", "rusta_workers_1")
    if cpus is None:
        cpus = os.cpu_count() or 1
    enough = cpus >= MIN_CPUS_FOR_SCALING
    note = "" if enough else (f"{cpus} cores: the 2 workers share them with wrk and the upstream; "
                              f"judged on {MIN_CPUS_FOR_SCALING}+ cores")
    check("2 workers vs 1 worker req/s, unpinned", scaling, f">= {MIN_TWO_WORKER_SCALING:.2f}",
          None if scaling is None or not enough else scaling >= MIN_TWO_WORKER_SCALING, note)
    return checks


def ratio(ok: dict[str, dict[str, Any]], name: str, base: str) -> float | None:
    """req/s of run `name` over run `base` (both in `ok`, by name), or None when either is missing."""
    if name in ok and base in ok and ok[base]["requests_per_s"]:
        return round(ok[name]["requests_per_s"] / ok[base]["requests_per_s"], 3)
    return None


def llm_p99_over_direct(results: list[dict[str, Any]]) -> float | None:
    """p99 of the llm route minus p99 of the stub provider reached directly (ms), or None when either is missing."""
    ok = {r["name"]: r for r in results if r["status"] == "ok"}
    if "rusta_llm" not in ok or "llm_direct" not in ok:
        return None
    return round(ok["rusta_llm"]["p99_ms"] - ok["llm_direct"]["p99_ms"], 3)


def comparisons(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures that compare two runs of the same bench: what recording costs (the primary run against the run
    with a recorder that does nothing), JWT + rate limit against the plain route, and p99 with one slow
    backend of three under round robin and under latency_aware. None where a run is missing."""
    ok = {r["name"]: r for r in results if r["status"] == "ok"}
    recorded = ratio(ok, "rusta", "rusta_no_recording")
    cpu_delta = None
    if "rusta" in ok and "rusta_no_recording" in ok:
        with_cpu, without_cpu = ok["rusta"]["cpu_us_per_request"], ok["rusta_no_recording"]["cpu_us_per_request"]
        if with_cpu is not None and without_cpu is not None:
            cpu_delta = round(with_cpu - without_cpu, 1)
    llm_p50 = (round(ok["rusta_llm"]["p50_ms"] - ok["llm_direct"]["p50_ms"], 3)
               if "rusta_llm" in ok and "llm_direct" in ok else None)
    slow_runs = ("slow_round_robin", "slow_latency_aware")
    slow = {name: ok[name]["p99_ms"] if name in ok else None for name in slow_runs}
    return {
        "recording_ratio": recorded,  # req/s with recording / without
        "recording_overhead_pct": None if recorded is None else round((1 - recorded) * 100, 1),
        "recording_cpu_us_per_request": cpu_delta,
        "jwt_ratelimit_ratio": ratio(ok, "rusta_jwt_ratelimit", "rusta"),
        "jwt_local_limit_ratio": ratio(ok, "rusta_jwt_local_limit", "rusta"),
        "llm_p99_over_direct_ms": llm_p99_over_direct(results),
        "llm_p50_over_direct_ms": llm_p50,
        "llm_ratio_to_direct": ratio(ok, "rusta_llm", "llm_direct"),
        "grpc_ratio_to_direct": ratio(ok, "rusta_grpc", "grpc_direct"),
        "grpc_p99_over_direct_ms": (round(ok["rusta_grpc"]["p99_ms"] - ok["grpc_direct"]["p99_ms"], 3)
                                    if "rusta_grpc" in ok and "grpc_direct" in ok else None),
        "two_worker_scaling": ratio(ok, "rusta_workers_2", "rusta_workers_1"),
        "slow_backend_p99_ms": slow,
        # p99 alone can hide the difference: latency_aware still sends the slow backend a few per cent.
        "slow_backend_p50_p90_ms": {name: [ok[name]["p50_ms"], ok[name].get("p90_ms")] if name in ok else None
                                    for name in slow_runs},
        "slow_backend_requests_per_s": {name: ok[name]["requests_per_s"] if name in ok else None
                                        for name in slow_runs},
        "slow_backend_p99_ratio": (round(slow["slow_latency_aware"] / slow["slow_round_robin"], 3)
                                   if slow["slow_round_robin"] and slow["slow_latency_aware"] else None),
    }


def _cell(value: Any, spec: str) -> str:
    """`value` formatted by `spec` (such as ">9.3f"), or a dash as wide."""
    if value is None:
        width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
        return "-".rjust(width)
    return format(value, spec)


def sampler_target(sampler: dict[str, Any]) -> dict[str, Any]:
    """The api_docs sampler's target: a request that is not sampled costs at most its target in µs."""
    value = sampler.get("not_sampled_us") if sampler.get("ok") else None
    limit = sampler.get("target_us", 20.0)
    return {"target": "api_docs not-sampled cost (µs/request)", "value": value,
            "shown": "-" if value is None else f"{value:.3f}", "limit": f"<= {limit:g}",
            "pass": None if value is None else value <= limit}


def sampler_text(sampler: dict[str, Any]) -> str:
    """The sampler's figures in one line (bench/apidocs_bench.py)."""
    if not sampler.get("ok"):
        return f"\napi_docs sampler: not measured: {sampler.get('reason')}"
    return (f"\napi_docs sampler: not sampled {sampler['not_sampled_us']:.3f} µs per request; sampled "
            f"+{sampler['sampled_us']:.2f} µs ({sampler['request_bytes']} B JSON request, {sampler['response_bytes']} "
            f"B JSON answer); learning one sample on the flusher's thread {sampler['learned_us']:.1f} µs")


def print_report(results: list[dict[str, Any]], checks: list[dict[str, Any]], matching: dict[str, Any] | None,
                 settings: dict[str, Any], compared: dict[str, Any] | None = None) -> None:
    print()
    rounds = f"; median of {settings['rounds']} interleaved rounds" if settings["rounds"] > 1 else ""
    print(f"wrk -t1 -c{settings['connections']} -d{settings['seconds']:g}s --latency, keep-alive, "
          f"{settings['warmup']:g} s warm-up; proxy on CPU {settings['proxy_cpu']}, "
          f"wrk and upstream on CPU {settings['load_cpu']}{rounds}")
    print("HTTP/2: h2load -t1 -c50 -m10 (p50/p99 from its per-request log); gRPC: bench/grpc_load.py, 50 calls in "
          "flight on one channel; TLS: ECDSA P-256 certificate made for this run")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r.get("group", "http1"), []).append(r)
    for group, runs in groups.items():
        print_table(GROUP_TITLES.get(group, group), runs)
    for r in results:
        if r["status"] == "ok" and r["kind"] == "rusta":
            print(f"\n{r['label']}: processes after the run"
                  f"{'' if r['clean_stop'] is None else ', stopped cleanly on SIGTERM: ' + str(r['clean_stop'])}")
            for p in r["processes"]:
                print(f"  pid {p['pid']:<7} {p['role']:<15} VmRSS {p['vmrss_mib']:>6.1f} MiB  "
                      f"VmHWM {p['vmhwm_mib']:>6.1f} MiB  {p['command']}")
    if matching is not None:
        if matching.get("ok"):
            print(f"\nroute matching: {matching['matches_per_s']:,} matches/s on {matching['routes']} routes "
                  f"({matching['param_routes']} with parameters; slices {matching['slowest_slice_per_s']:,}"
                  f"-{matching['fastest_slice_per_s']:,}/s)")
        else:
            print(f"\nroute matching: not measured: {matching.get('reason') or matching.get('errors')}")
    if compared is not None:
        print_comparisons(compared)
    print("\ntargets")
    for c in checks:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[c["pass"]]
        note = f"; {c['note']}" if c.get("note") else ""
        print(f"  {verdict}  {c['target']:<44} {c['shown']:>10}  (target {c['limit']}{note})")


def print_table(title: str, results: list[dict[str, Any]]) -> None:
    """One group's runs: req/s, ratios to nginx and Caddy of the same group, latency, CPU, memory, errors."""
    header = (f"{'scenario':<30} {'req/s':>9} {'vs nginx':>9} {'vs caddy':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU us/req':>10} {'RSS MiB':>8} {'HWM MiB':>8} {'errors':>7}")
    print(f"\n{title}")
    print(header)
    print("-" * len(header))
    for r in results:
        if r["status"] != "ok":
            print(f"{r['label']:<30} {r['status'].upper()}: {r['reason']}")
            continue
        rss = worker_rss(r)
        hwm = max((p["vmhwm_mib"] for p in r.get("processes", []) if p["role"] != "main"), default=None)
        print(f"{r['label']:<30} {r['requests_per_s']:>9,.0f} {_cell(r['vs_nginx'], '>9.3f')} "
              f"{_cell(r.get('vs_caddy'), '>9.3f')} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{_cell(r['cpu_us_per_request'], '>10.0f')} {_cell(rss, '>8.1f')} {_cell(hwm, '>8.1f')} "
              f"{r['errors']:>7}")


def print_comparisons(compared: dict[str, Any]) -> None:
    lines = []
    if compared["recording_ratio"] is not None:
        cpu = compared["recording_cpu_us_per_request"]
        lines.append(f"  metrics recording: req/s with / without = {compared['recording_ratio']:.3f} "
                     f"({compared['recording_overhead_pct']:+.1f}% overhead"
                     f"{'' if cpu is None else f', {cpu:+.1f} CPU us per request'})")
    if compared["jwt_ratelimit_ratio"] is not None:
        lines.append(f"  JWT + Redis rate limit: req/s vs the plain route = {compared['jwt_ratelimit_ratio']:.3f}")
    if compared["jwt_local_limit_ratio"] is not None:
        lines.append(f"  JWT + local rate limit: req/s vs the plain route = {compared['jwt_local_limit_ratio']:.3f}")
    if compared.get("llm_p99_over_direct_ms") is not None:
        lines.append(f"  LLM route over the stub provider direct: p99 {compared['llm_p99_over_direct_ms']:+.2f} ms, "
                     f"p50 {compared['llm_p50_over_direct_ms']:+.2f} ms, "
                     f"req/s ratio {_cell(compared['llm_ratio_to_direct'], '.3f')}")
    if compared.get("grpc_ratio_to_direct") is not None:
        lines.append(f"  gRPC route over the backend direct: req/s ratio {compared['grpc_ratio_to_direct']:.3f}, "
                     f"p99 {compared['grpc_p99_over_direct_ms']:+.2f} ms")
    if compared.get("two_worker_scaling") is not None:
        lines.append(f"  --workers 2 / --workers 1, unpinned: req/s ratio {compared['two_worker_scaling']:.3f}")
    slow = compared["slow_backend_p99_ms"]
    if any(value is not None for value in slow.values()):
        shown = ", ".join(f"{name.removeprefix('slow_')} {_cell(value, '.2f')} ms" for name, value in slow.items())
        ratio = compared["slow_backend_p99_ratio"]
        lines.append(f"  one slow backend of three, p99: {shown}"
                     f"{'' if ratio is None else f' (latency_aware / round_robin = {ratio:.3f})'}")
        for name, pair in compared["slow_backend_p50_p90_ms"].items():
            if pair is not None:
                rate = compared["slow_backend_requests_per_s"][name]
                label = name.removeprefix("slow_")
                lines.append(f"    {label:<14} p50 {pair[0]:.2f} ms, p90 {_cell(pair[1], '.2f')} ms, {rate:,.0f} req/s")
    if lines:
        print("\ncomparisons (same run)")
        print("\n".join(lines))


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
