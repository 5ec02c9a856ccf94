"""`make bench`: the upstream direct, nginx, Caddy and Rusta under the same load (wrk, h2load, gRPC), in one
run, on pinned cores: the orchestrator of bench/peers.py, bench/rusta.py and bench/load.py."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import IO, Any

from bench import h2, load, peers, report, rusta, tls, wrk
from bench.load import LoadSettings
from bench.procs import BenchError, Processes, free_port, wait_until_ok, worker_memory
from bench.rusta import IMPORTCONFIG, RUNPROXY, RustaRunner
from bench.scenarios import GROUP_TITLES, SCENARIOS, SLOW_DELAY_MS, Context, Scenario

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["IMPORTCONFIG", "RUNPROXY", "Bench", "main"]


def pick_cpus() -> tuple[str | None, str | None]:
    """(proxy CPU, load CPU): two distinct cores when this process may use two, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[1])


class Bench:
    """One bench run: a private directory, the shared upstreams, then each scenario in turn."""

    def __init__(self, args: argparse.Namespace, procs: Processes, run_dir: Path) -> None:
        self.args = args
        self.procs = procs
        self.run_dir = run_dir
        self.proxy_cpu, self.load_cpu = pick_cpus()
        taken: set[int] = set()
        self.upstream_port = free_port(args.upstream_port, taken)
        self.slow_ports = (free_port(args.upstream_port + 10, taken), free_port(args.upstream_port + 11, taken),
                           free_port(args.upstream_port + 12, taken))
        self.grpc_port = free_port(args.upstream_port + 4, taken)
        self.taken = taken
        self.load = LoadSettings(procs, run_dir, args.seconds, args.warmup, args.connections, self.load_cpu)
        self._certificate: tls.BenchCertificate | None = None
        self.rusta = RustaRunner(procs, run_dir, ports=(args.rusta_port, args.rusta_admin_port, args.rusta_tls_port),
                                 cpu=self.proxy_cpu, taken=taken, measure=self.measure,
                                 certificate=self.certificate, start_redis=self.start_redis)

    # --- helpers ------------------------------------------------------------------------------------------
    def log_file(self, name: str) -> IO[bytes]:
        """The log of one step; the child gets its own copy of the descriptor, so close it after starting."""
        return open(self.run_dir / f"{name}.log", "ab")

    def certificate(self) -> tls.BenchCertificate:
        """The TLS runs' certificate, made once per bench run."""
        if self._certificate is None:
            self._certificate = tls.make_certificate(self.run_dir)
        return self._certificate

    def measure(self, scenario: Scenario, port: int, cost_of: int | None) -> dict[str, Any]:
        return load.measure(self.load, scenario, port, cost_of)

    def start_redis(self) -> tuple[Any, int]:
        """A private redis-server (nothing kept on disk) on a free port, on the load CPU like the upstream."""
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise BenchError("redis-server is not installed (apt-get install redis-server)")
        port = free_port(self.args.upstream_port + 20, set(self.taken))
        with self.log_file("redis") as log:
            proc = self.procs.start([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", str(self.run_dir), "--daemonize", "no"],
                                    cpu=self.load_cpu, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not redis_ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.procs.stop(proc, grace=1.0)
                raise BenchError(f"redis-server did not start on port {port}; see {self.run_dir / 'redis.log'}")
            time.sleep(0.05)
        return proc, port

    def start_slow_upstreams(self) -> Any:
        """bench/slow_upstreams.py on the three slow-scenario ports (the last one slow), on the load CPU."""
        argv = [sys.executable, "-m", "bench.slow_upstreams", "--slow", "1", "--delay-ms", str(SLOW_DELAY_MS),
                *map(str, self.slow_ports)]
        with self.log_file("slow-upstreams") as log:
            proc = self.procs.start(argv, cpu=self.load_cpu, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_until_ok(proc, [(port, "/") for port in self.slow_ports[:-1]], timeout=10)
        return proc

    def start_grpc_backend(self) -> Any:
        """bench/grpc_load.py's backend on the gRPC port, on the load CPU like the upstream."""
        argv = [sys.executable, "-m", "bench.grpc_load", "serve", "--port", str(self.grpc_port)]
        with self.log_file("grpc-backend") as log:
            proc = self.procs.start(argv, cpu=self.load_cpu, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            peers.wait_until_listening(proc, self.grpc_port, timeout=20)
        except BenchError as exc:
            self.procs.stop(proc, grace=1.0)
            raise BenchError(f"the gRPC backend {exc}; see {self.run_dir / 'grpc-backend.log'}") from None
        return proc

    # --- the run ------------------------------------------------------------------------------------------
    def start_peer(self, scenario: Scenario) -> Any:
        """nginx or Caddy as `scenario` wants it (TLS, h2c), on the proxy CPU, ready to measure."""
        port = free_port(self.args.nginx_port if scenario.kind == "nginx" else self.args.caddy_port, set(self.taken))
        values: dict[str, int | str] = {"PORT": port, "UPSTREAM_PORT": self.upstream_port}
        if scenario.tls:
            cert = self.certificate()
            values.update(CERT=str(cert.cert_path), KEY=str(cert.key_path))
        # Only a cleartext HTTP/1.1 listener can be probed with a plain GET; the others are ready when they listen.
        check = scenario.path if not scenario.tls and scenario.tool == "wrk" else None
        if scenario.kind == "nginx":
            template = ("proxy-tls.conf.template" if scenario.tls else
                        "proxy-h2c.conf.template" if scenario.tool == "h2load" else "proxy.conf.template")
            proc = peers.start_nginx(self.procs, self.run_dir, template, self.proxy_cpu, check, **values)
        else:
            template = "Caddyfile-tls.template" if scenario.tls else "Caddyfile.template"
            proc = peers.start_caddy(self.procs, self.run_dir, template, self.proxy_cpu, check, **values)
        if scenario.tls:
            tls.wait_for_handshake(port, timeout=10)
        return proc, port

    def run_scenario(self, scenario: Scenario) -> dict[str, Any]:
        if scenario.kind == "direct":
            return {"status": "ok", **self.measure(scenario, self.upstream_port, None)}
        if scenario.kind == "grpc_direct":
            return {"status": "ok", **self.measure(scenario, self.grpc_port, None)}
        if scenario.kind in ("nginx", "caddy"):
            proc, port = self.start_peer(scenario)
            try:
                measured = self.measure(scenario, port, proc.pid)
                measured["processes"] = [asdict(m) for m in worker_memory(proc.pid)]
            finally:
                self.procs.stop(proc, grace=5.0)
            return {"status": "ok", **measured}
        return self.rusta.run(scenario)

    def match_bench(self) -> dict[str, Any]:
        argv = [sys.executable, str(ROOT / "bench" / "match_bench.py"), "--json",
                "--seconds", f"{self.args.match_seconds:g}"]
        proc = self.procs.start(argv, cpu=self.proxy_cpu, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=self.args.match_seconds + 60)
        finally:
            self.procs.stop(proc, grace=1.0)
        try:
            return dict(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"ok": False, "reason": f"match_bench.py failed: {err.decode(errors='replace')[-500:]}"}

    def apidocs_bench(self) -> dict[str, Any]:
        """What a route's api_docs sampler adds to a request (bench/apidocs_bench.py), on the proxy's CPU."""
        argv = [sys.executable, "-m", "bench.apidocs_bench", "--json"]
        proc = self.procs.start(argv, cpu=self.proxy_cpu, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            self.procs.stop(proc, grace=1.0)
        try:
            return dict(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"ok": False, "reason": f"apidocs_bench failed: {err.decode(errors='replace')[-500:]}"}

    def run(self, scenarios: list[Scenario]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        upstream = peers.start_nginx(self.procs, self.run_dir, "upstream.conf.template", self.load_cpu, "/",
                                     PORT=self.upstream_port)
        results = []
        slow = grpc_backend = None
        try:
            if any(s.upstream == "slow" for s in scenarios):
                slow = self.start_slow_upstreams()
            if any(s.kind == "grpc_direct" or (s.tool == "grpc" and rusta.missing_capability(s) is None)
                   for s in scenarios):
                grpc_backend = self.start_grpc_backend()
            matching = None
            if not self.args.skip_match:
                print("route matching micro-benchmark...", flush=True)
                matching = self.match_bench()
            rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in scenarios}
            # Interleaved rounds (all scenarios, then all again): slow drift of the machine hits each alike.
            for number in range(1, self.args.rounds + 1):
                for scenario in scenarios:
                    if any(r["status"] == "skipped" for r in rounds[scenario.name]):
                        continue
                    label = scenario.label
                    if self.args.rounds > 1:
                        label += f" (round {number}/{self.args.rounds})"
                    print(f"{label}: {self.args.warmup:g} s warm-up + {self.args.seconds:g} s...", flush=True)
                    try:
                        outcome = self.run_scenario(scenario)
                    except (BenchError, wrk.WrkError, h2.H2loadError, subprocess.SubprocessError) as exc:
                        outcome = {"status": "failed", "reason": str(exc)}
                    if outcome["status"] != "ok":
                        print(f"  {outcome['status']}: {outcome['reason']}", flush=True)
                    rounds[scenario.name].append(outcome)
            for scenario in scenarios:
                base = {"name": scenario.name, "label": scenario.label, "kind": scenario.kind,
                        "primary": scenario.primary, "path": scenario.path, "access_log": scenario.access_log,
                        "group": scenario.group, "tool": scenario.tool, "tls": scenario.tls,
                        "workers": scenario.workers, "pinned": scenario.pinned}
                results.append({**base, **report.combine_rounds(rounds[scenario.name])})
        finally:
            self.procs.stop(upstream, grace=5.0)
            for helper in (slow, grpc_backend):
                if helper is not None:
                    self.procs.stop(helper, grace=5.0)
        return results, matching


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def machine_facts() -> dict[str, Any]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT)
        except (OSError, subprocess.SubprocessError):
            return ""
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else ""

    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": first_line(["nginx", "-v"]),
        "wrk": first_line(["wrk", "-v"]),
        "caddy": first_line([peers.CADDY, "version"]),
        "h2load": first_line(["h2load", "--version"]),
        "git_commit": first_line(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(first_line(["git", "status", "--porcelain"])),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured wrk run per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="wrk warm-up before each measured run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds; each figure is the median over them (the anchors used 3)")
    parser.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--groups", default="",
                        help=f"comma-separated report groups to run ({', '.join(GROUP_TITLES)}; default: all)")
    parser.add_argument("--match-seconds", type=float, default=2.0, help="route-matching time budget")
    parser.add_argument("--skip-match", action="store_true", help="leave out the route-matching benchmark")
    parser.add_argument("--upstream-port", type=int, default=9101)
    parser.add_argument("--nginx-port", type=int, default=9102)
    parser.add_argument("--rusta-port", type=int, default=8000)
    parser.add_argument("--rusta-admin-port", type=int, default=8001)
    parser.add_argument("--rusta-tls-port", type=int, default=8443)
    parser.add_argument("--caddy-port", type=int, default=9103)
    parser.add_argument("--output", type=Path, default=ROOT / ".bench" / "results.json")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into an exception so every `finally` runs and every server is stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in (make(Context(upstream_port=args.upstream_port)) for make in SCENARIOS):
            print(f"{s.name:<22} {s.group:<8} {s.label}")
        return 0
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _raise_on_signal)
    out_dir = args.output.resolve().parent
    run_dir = out_dir / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    # nginx workers drop root; they must still reach their temp directories.
    for directory in (out_dir, run_dir):
        directory.chmod(0o755)

    procs = Processes()
    bench = Bench(args, procs, run_dir)
    ctx = Context(upstream_port=bench.upstream_port, slow_ports=bench.slow_ports, grpc_port=bench.grpc_port)
    scenarios = [make(ctx) for make in SCENARIOS]
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = wanted - {s.name for s in scenarios}
        if unknown:
            print(f"unknown scenarios: {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s.name in wanted]
    if args.groups:
        groups = {name.strip() for name in args.groups.split(",") if name.strip()}
        if groups - set(GROUP_TITLES):
            print(f"unknown groups: {', '.join(sorted(groups - set(GROUP_TITLES)))} "
                  f"(known: {', '.join(GROUP_TITLES)})", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s.group in groups]

    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        # The anchors were measured on an idle machine; neighbours on either core show up in p99 first.
        print(f"note: load average {load_before:.2f} before the bench: other processes compete for the cores, "
              "so expect noisy figures (try --rounds 3)", flush=True)
    started_at = time.time()
    started = time.monotonic()
    try:
        results, matching = bench.run(scenarios)
        print("api_docs sampler micro-benchmark...", flush=True)
        sampler = bench.apidocs_bench()
    except BenchError as exc:
        print(f"bench could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()

    report.add_ratios(results)
    checks = report.targets(results, matching) + [report.sampler_target(sampler)]
    comparisons = report.comparisons(results)
    settings = {"seconds": args.seconds, "warmup": args.warmup, "connections": args.connections, "wrk_threads": 1,
                "rounds": args.rounds, "proxy_cpu": bench.proxy_cpu, "load_cpu": bench.load_cpu,
                "upstream_port": bench.upstream_port, "loadavg_before": round(load_before, 2),
                "loadavg_after": round(os.getloadavg()[0], 2)}
    print(report.sampler_text(sampler))
    report.print_report(results, checks, matching, settings, comparisons)
    duration = time.monotonic() - started
    report.write_json(args.output, {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "duration_s": round(duration, 1),
        "settings": settings,
        "machine": machine_facts(),
        "scenarios": results,
        "route_matching": matching,
        "api_docs_sampler": sampler,
        "targets": checks,
        "comparisons": comparisons,
    })
    print(f"\n{len(results)} runs in {duration:.0f} s; results in {args.output}; logs in {run_dir}")
    # The bench itself keeps about 2 cores busy, so a 1-minute load above ~2.5 means someone else was too.
    if settings["loadavg_after"] > 2.5:
        print(f"note: load average {settings['loadavg_after']:.2f} at the end: other processes ran during the "
              "bench; treat these figures as disturbed")
    # A bench reports; it is not a test: missed targets do not fail the command.
    return 0


if __name__ == "__main__":
    sys.exit(main())
