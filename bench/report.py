"""The bench's verdicts and output: targets, the printed table and .bench/results.json."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

# The targets of the gateway on this kind of machine (see shared/PERF-ANCHORS.md for where they come from).
MIN_RATIO_TO_NGINX = 0.20
MAX_P99_MS = 25.0
MAX_WORKER_RSS_MIB = 120.0
MIN_MATCHES_PER_S = 200_000


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
    """Each run's req/s relative to nginx measured in the same run (absolute figures drift between runs)."""
    nginx = next((r for r in results if r["kind"] == "nginx" and r["status"] == "ok"), None)
    for result in results:
        if nginx is not None and result["status"] == "ok":
            result["vs_nginx"] = round(result["requests_per_s"] / nginx["requests_per_s"], 3)
        else:
            result["vs_nginx"] = None


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
    return checks


def _cell(value: Any, spec: str) -> str:
    """`value` formatted by `spec` (such as ">9.3f"), or a dash as wide."""
    if value is None:
        width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
        return "-".rjust(width)
    return format(value, spec)


def print_report(results: list[dict[str, Any]], checks: list[dict[str, Any]], matching: dict[str, Any] | None,
                 settings: dict[str, Any]) -> None:
    print()
    rounds = f"; median of {settings['rounds']} interleaved rounds" if settings["rounds"] > 1 else ""
    print(f"wrk -t1 -c{settings['connections']} -d{settings['seconds']:g}s --latency, keep-alive, "
          f"{settings['warmup']:g} s warm-up; proxy on CPU {settings['proxy_cpu']}, "
          f"wrk and upstream on CPU {settings['load_cpu']}{rounds}")
    header = (f"{'scenario':<30} {'req/s':>9} {'vs nginx':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'CPU us/req':>10} {'RSS MiB':>8} {'HWM MiB':>8} {'errors':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        if r["status"] != "ok":
            print(f"{r['label']:<30} {r['status'].upper()}: {r['reason']}")
            continue
        rss = worker_rss(r)
        hwm = max((p["vmhwm_mib"] for p in r.get("processes", []) if p["role"] != "main"), default=None)
        print(f"{r['label']:<30} {r['requests_per_s']:>9,.0f} {_cell(r['vs_nginx'], '>9.3f')} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {_cell(r['cpu_us_per_request'], '>10.0f')} "
              f"{_cell(rss, '>8.1f')} {_cell(hwm, '>8.1f')} {r['errors']:>7}")
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
    print("\ntargets")
    for c in checks:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[c["pass"]]
        print(f"  {verdict}  {c['target']:<44} {c['shown']:>10}  (target {c['limit']})")


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
