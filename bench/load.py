"""One measured run of a scenario with its tool (wrk, h2load or bench/grpc_load.py): a warm-up, then the run,
with the CPU time the peer's process tree spent on it; every tool's figures in the same shape."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import h2, wrk
from bench.procs import BenchError, Processes, cpu_seconds, process_tree
from bench.scenarios import GRPC_CONCURRENCY, H2_CLIENTS, H2_STREAMS, Scenario

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """What every measured run of a bench shares: durations, wrk's connections, the load generator's CPU."""

    procs: Processes
    run_dir: Path
    seconds: float
    warmup: float
    connections: int
    cpu: str | None


@dataclass(frozen=True, slots=True)
class Figures:
    """A tool's result reduced to what the report shows."""

    requests_per_s: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    non_2xx: int
    socket_errors: dict[str, int]
    errors: int


def measure(settings: LoadSettings, scenario: Scenario, port: int, cost_of: int | None) -> dict[str, Any]:
    """Warm up, then the measured run against 127.0.0.1:port; CPU µs per request of `cost_of`'s process tree."""
    cpu = settings.cpu if scenario.pinned else None
    if settings.warmup > 0:
        _drive(settings, scenario, port, settings.warmup, cpu)
    tree = process_tree(cost_of) if cost_of else []
    before = cpu_seconds(tree)
    result = _drive(settings, scenario, port, settings.seconds, cpu)
    spent = cpu_seconds(tree) - before
    return {
        "requests_per_s": round(result.requests_per_s, 1),
        "requests": result.requests,
        "seconds": result.seconds,
        "p50_ms": round(result.latency_ms["p50"], 3),
        "p75_ms": round(result.latency_ms.get("p75", 0.0), 3),
        "p90_ms": round(result.latency_ms.get("p90", 0.0), 3),
        "p99_ms": round(result.latency_ms["p99"], 3),
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "errors": result.errors,
        "cpu_us_per_request": round(spent * 1e6 / result.requests, 1) if cost_of and result.requests else None,
        "connections": connections(settings, scenario),
        "tool": scenario.tool,
    }


def connections(settings: LoadSettings, scenario: Scenario) -> int:
    if scenario.tool == "h2load":
        return H2_CLIENTS
    if scenario.tool == "grpc":
        return 1
    return scenario.connections or settings.connections


def _drive(settings: LoadSettings, scenario: Scenario, port: int, seconds: float, cpu: str | None) -> Figures:
    scheme = "https" if scenario.tls else "http"
    url = f"{scheme}://127.0.0.1:{port}{scenario.path}"
    if scenario.tool == "h2load":
        done = h2.run(settings.procs, url, seconds=seconds, warmup=0, clients=H2_CLIENTS, streams=H2_STREAMS,
                      log_file=settings.run_dir / f"{scenario.name}.h2load.log", cpu=cpu)
        return Figures(done.requests_per_s, done.requests, done.seconds, done.latency_ms, done.non_2xx,
                       {"failed": done.failed}, done.errors)
    if scenario.tool == "grpc":
        return _grpc(settings, port, seconds, cpu)
    script = None
    if scenario.method != "GET" or scenario.body is not None:
        script = settings.run_dir / f"{scenario.name}.lua"
        script.write_text(wrk.request_script(scenario.method, scenario.body or ""))
    ran = wrk.run(settings.procs, url, seconds=seconds, connections=connections(settings, scenario), cpu=cpu,
                  headers=scenario.headers, script=script)
    return Figures(ran.requests_per_s, ran.requests, ran.seconds, ran.latency_ms, ran.non_2xx, ran.socket_errors,
                   ran.errors)


def _grpc(settings: LoadSettings, port: int, seconds: float, cpu: str | None) -> Figures:
    argv = [sys.executable, "-m", "bench.grpc_load", "load", "--target", f"127.0.0.1:{port}",
            "--seconds", f"{seconds:g}", "--warmup", "0", "--concurrency", str(GRPC_CONCURRENCY)]
    proc = settings.procs.start(argv, cpu=cpu, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the gRPC load generator did not stop after {seconds + 60:g} s") from None
    finally:
        settings.procs.stop(proc, grace=1.0)
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"the gRPC load generator failed: {err.decode(errors='replace')[-500:]}") from None
    if "error" in result or not result["requests"]:
        raise BenchError(f"the gRPC load generator measured nothing: {result.get('error') or result['failed']}")
    failed = sum(result["failed"].values())
    latency = {f"p{p}": result[f"p{p}_ms"] for p in (50, 75, 90, 99)}
    # A failed call is the gRPC side of a non-2xx answer; the statuses are kept by name.
    return Figures(result["requests_per_s"], result["requests"], result["seconds"], latency, failed,
                   dict(result["failed"]), failed)
