"""`make bench`: upstream direct, nginx proxy and Rusta under the same wrk load, in one run, on pinned cores."""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
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

from bench import report, wrk
from bench.procs import (
    BenchError,
    Processes,
    cpu_seconds,
    free_port,
    http_status,
    process_tree,
    wait_until_ok,
    worker_memory,
)
from bench.scenarios import SCENARIOS, SLOW_DELAY_MS, Context, Scenario

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATES = Path(__file__).resolve().parent / "nginx"
RUNPROXY = ROOT / "rusta" / "management" / "commands" / "runproxy.py"
IMPORTCONFIG = ROOT / "routes" / "management" / "commands" / "importconfig.py"
# Inherited settings that would point the bench at someone's real database, broker or tuning.
_SCRUBBED_PREFIXES = ("RUSTA_", "DJANGO_", "CELERY_")
_SCRUBBED = frozenset({"DATABASE_URL", "REDIS_URL"})
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def pick_cpus() -> tuple[str | None, str | None]:
    """(proxy CPU, load CPU): two distinct cores when this process may use two, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return str(cpus[0]), str(cpus[1])


class Bench:
    """One bench run: a private directory, the shared upstream, then each scenario in turn."""

    def __init__(self, args: argparse.Namespace, procs: Processes, run_dir: Path) -> None:
        self.args = args
        self.procs = procs
        self.run_dir = run_dir
        self.proxy_cpu, self.load_cpu = pick_cpus()
        taken: set[int] = set()
        self.upstream_port = free_port(args.upstream_port, taken)
        self.slow_ports = (free_port(args.upstream_port + 10, taken), free_port(args.upstream_port + 11, taken),
                           free_port(args.upstream_port + 12, taken))
        self.template_db: Path | None = None

    # --- helpers ------------------------------------------------------------------------------------------
    def log_file(self, name: str) -> IO[bytes]:
        """The log of one step; the child gets its own copy of the descriptor, so close it after starting."""
        return open(self.run_dir / f"{name}.log", "ab")

    def render_nginx(self, template: str, **values: int) -> Path:
        text = (NGINX_TEMPLATES / template).read_text().replace("@RUN_DIR@", str(self.run_dir))
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        leftover = _PLACEHOLDER.findall(text)
        if leftover:
            raise BenchError(f"{template}: placeholders left unfilled: {', '.join(sorted(set(leftover)))}")
        conf = self.run_dir / template.removesuffix(".template")
        conf.write_text(text)
        return conf

    def start_nginx(self, template: str, cpu: str | None, check_path: str, **values: int) -> Any:
        conf = self.render_nginx(template, **values)
        name = conf.stem
        # nginx makes its temp directories but not their parent; its workers (not root) must reach them.
        (self.run_dir / f"{name}-temp").mkdir(mode=0o755, exist_ok=True)
        error_log = self.run_dir / f"{name}.error.log"
        with self.log_file(name) as log:
            proc = self.procs.start(["nginx", "-p", str(self.run_dir), "-c", str(conf), "-e", str(error_log)],
                                    cpu=cpu, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_ok(proc, [(values["PORT"], check_path)], timeout=10)
        except BenchError as exc:
            raise BenchError(f"nginx ({name}) {exc}; see {error_log}") from None
        return proc

    def measure(self, scenario: Scenario, port: int, cost_of: int | None) -> dict[str, Any]:
        """Warm up, then the measured run; CPU time of `cost_of`'s process tree per request."""
        url = f"http://127.0.0.1:{port}{scenario.path}"
        connections = scenario.connections or self.args.connections
        script = None
        if scenario.method != "GET" or scenario.body is not None:
            script = self.run_dir / f"{scenario.name}.lua"
            script.write_text(wrk.request_script(scenario.method, scenario.body or ""))
        if self.args.warmup > 0:
            wrk.run(self.procs, url, seconds=self.args.warmup, connections=connections,
                    cpu=self.load_cpu, headers=scenario.headers, script=script)
        tree = process_tree(cost_of) if cost_of else []
        before = cpu_seconds(tree)
        result = wrk.run(self.procs, url, seconds=self.args.seconds, connections=connections,
                         cpu=self.load_cpu, headers=scenario.headers, script=script)
        cpu = cpu_seconds(tree) - before
        return {
            "requests_per_s": round(result.requests_per_s, 1),
            "requests": result.requests,
            "seconds": result.seconds,
            "p50_ms": round(result.p50_ms, 3),
            "p75_ms": round(result.latency_ms.get("p75", 0.0), 3),
            "p90_ms": round(result.latency_ms.get("p90", 0.0), 3),
            "p99_ms": round(result.p99_ms, 3),
            "non_2xx": result.non_2xx,
            "socket_errors": result.socket_errors,
            "errors": result.errors,
            "cpu_us_per_request": round(cpu * 1e6 / result.requests, 1) if cost_of and result.requests else None,
            "connections": connections,
        }

    def start_redis(self) -> tuple[Any, int]:
        """A private redis-server (nothing kept on disk) on a free port, on the load CPU like the upstream."""
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise BenchError("redis-server is not installed (apt-get install redis-server)")
        port = free_port(self.args.upstream_port + 20, {self.upstream_port, *self.slow_ports})
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

    # --- Rusta --------------------------------------------------------------------------------------------
    def rusta_env(self, db: Path, var_dir: Path, access_log: bool) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)}
        var_dir.mkdir(parents=True, exist_ok=True)
        env.update({
            "DATABASE_URL": f"sqlite:///{db}",  # db is absolute, hence sqlite:////...
            "RUSTA_VAR_DIR": str(var_dir),
            "RUSTA_ACCESS_LOG": "true" if access_log else "false",
            "RUSTA_SHUTDOWN_GRACE": "5",
        })
        return env

    def manage(self, argv: list[str], env: dict[str, str], log_name: str) -> None:
        with self.log_file(log_name) as log:
            done = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"manage.py {argv[0]} failed (status {done.returncode}); "
                             f"see {self.run_dir / (log_name + '.log')}")

    def migrated_db(self) -> Path:
        """A migrated database, made once per bench run; every Rusta scenario starts from a copy of it."""
        if self.template_db is None:
            db = self.run_dir / "template.sqlite3"
            started = time.monotonic()
            self.manage(["migrate", "--noinput", "-v", "0"], self.rusta_env(db, self.run_dir / "var", False),
                        "migrate")
            print(f"  migrated a fresh database in {time.monotonic() - started:.1f} s", flush=True)
            self.template_db = db
        return self.template_db

    def run_rusta(self, scenario: Scenario) -> dict[str, Any]:
        missing = [p.name for p in (RUNPROXY, IMPORTCONFIG) if not p.exists()]
        if missing:
            return {"status": "skipped", "reason": f"{', '.join(missing)} not in this checkout yet"}
        template = self.migrated_db()
        db = self.run_dir / f"{scenario.name}.sqlite3"
        for source in template.parent.glob(template.name + "*"):  # the -wal and -shm files too
            shutil.copyfile(source, db.parent / source.name.replace(template.name, db.name))
        env = self.rusta_env(db, self.run_dir / f"{scenario.name}-var", scenario.access_log)
        env.update(scenario.env)
        redis = None
        if scenario.redis:
            redis, redis_port = self.start_redis()
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        try:
            return self._run_rusta(scenario, env)
        finally:
            if redis is not None:
                self.procs.stop(redis, grace=5.0)

    def _run_rusta(self, scenario: Scenario, env: dict[str, str]) -> dict[str, Any]:
        routes = self.run_dir / f"{scenario.name}.routes.json"
        routes.write_text(json.dumps(scenario.routes, indent=2))
        self.manage(["importconfig", str(routes)], env, scenario.name)

        in_use = {self.upstream_port, *self.slow_ports}
        port = free_port(self.args.rusta_port, in_use)
        admin_port = free_port(self.args.rusta_admin_port, in_use)
        log_path = self.run_dir / f"{scenario.name}.log"
        # --no-background: the Celery worker would share the proxy's pinned core; the bench measures the proxy.
        argv = [sys.executable, "manage.py", "runproxy", "--host", "127.0.0.1", "--port", str(port),
                "--admin-port", str(admin_port), "--workers", "1", "--no-background"]
        with self.log_file(scenario.name) as log:
            # With the access log on, its lines (stdout) go to /dev/null: we measure producing them, not a disk.
            proc = self.procs.start(argv, cpu=self.proxy_cpu, env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL if scenario.access_log else log, stderr=log)
        try:
            started = time.monotonic()
            try:
                wait_until_ok(proc, [(port, "/ready"), (admin_port, "/ready")], timeout=60)
            except BenchError as exc:
                raise BenchError(f"runproxy {exc}; see {log_path}") from None
            ready_s = time.monotonic() - started
            status = http_status(port, scenario.path, headers=scenario.headers, method=scenario.method,
                                 body=scenario.body)
            if status != 200:
                raise BenchError(f"{scenario.method} {scenario.path} through Rusta answered {status}, not 200; "
                                 f"see {log_path}")
            measured = self.measure(scenario, port, cost_of=proc.pid)
            measured["processes"] = [asdict(m) for m in worker_memory(proc.pid)]
            measured["ready_after_s"] = round(ready_s, 2)
        finally:
            stopped_by_itself = self.procs.stop(proc, grace=15.0)
        # Clean: it left on SIGTERM within the grace period, and with status 0.
        measured["clean_stop"] = stopped_by_itself and proc.returncode == 0
        measured["exit_status"] = proc.returncode
        return {"status": "ok", **measured}

    # --- the run ------------------------------------------------------------------------------------------
    def run_scenario(self, scenario: Scenario) -> dict[str, Any]:
        if scenario.kind == "direct":
            return {"status": "ok", **self.measure(scenario, self.upstream_port, cost_of=None)}
        if scenario.kind == "nginx":
            port = free_port(self.args.nginx_port, {self.upstream_port})
            proc = self.start_nginx("proxy.conf.template", self.proxy_cpu, scenario.path, PORT=port,
                                    UPSTREAM_PORT=self.upstream_port)
            try:
                measured = self.measure(scenario, port, cost_of=proc.pid)
                measured["processes"] = [asdict(m) for m in worker_memory(proc.pid)]
            finally:
                self.procs.stop(proc, grace=5.0)
            return {"status": "ok", **measured}
        return self.run_rusta(scenario)

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

    def run(self, scenarios: list[Scenario]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        upstream = self.start_nginx("upstream.conf.template", self.load_cpu, "/", PORT=self.upstream_port)
        results = []
        slow = None
        try:
            if any(s.upstream == "slow" for s in scenarios):
                slow = self.start_slow_upstreams()
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
                    except (BenchError, wrk.WrkError, subprocess.SubprocessError) as exc:
                        outcome = {"status": "failed", "reason": str(exc)}
                    if outcome["status"] != "ok":
                        print(f"  {outcome['status']}: {outcome['reason']}", flush=True)
                    rounds[scenario.name].append(outcome)
            for scenario in scenarios:
                base = {"name": scenario.name, "label": scenario.label, "kind": scenario.kind,
                        "primary": scenario.primary, "path": scenario.path, "access_log": scenario.access_log}
                results.append({**base, **report.combine_rounds(rounds[scenario.name])})
        finally:
            self.procs.stop(upstream, grace=5.0)
            if slow is not None:
                self.procs.stop(slow, grace=5.0)
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
    parser.add_argument("--match-seconds", type=float, default=2.0, help="route-matching time budget")
    parser.add_argument("--skip-match", action="store_true", help="leave out the route-matching benchmark")
    parser.add_argument("--upstream-port", type=int, default=9101)
    parser.add_argument("--nginx-port", type=int, default=9102)
    parser.add_argument("--rusta-port", type=int, default=8000)
    parser.add_argument("--rusta-admin-port", type=int, default=8001)
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
            print(f"{s.name:<22} {s.label}")
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
    ctx = Context(upstream_port=bench.upstream_port, slow_ports=bench.slow_ports)
    scenarios = [make(ctx) for make in SCENARIOS]
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = wanted - {s.name for s in scenarios}
        if unknown:
            print(f"unknown scenarios: {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
            return 2
        scenarios = [s for s in scenarios if s.name in wanted]

    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        # The anchors were measured on an idle machine; neighbours on either core show up in p99 first.
        print(f"note: load average {load_before:.2f} before the bench: other processes compete for the cores, "
              "so expect noisy figures (try --rounds 3)", flush=True)
    started_at = time.time()
    started = time.monotonic()
    try:
        results, matching = bench.run(scenarios)
    except BenchError as exc:
        print(f"bench could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()

    report.add_ratios(results)
    checks = report.targets(results, matching)
    comparisons = report.comparisons(results)
    settings = {"seconds": args.seconds, "warmup": args.warmup, "connections": args.connections, "wrk_threads": 1,
                "rounds": args.rounds, "proxy_cpu": bench.proxy_cpu, "load_cpu": bench.load_cpu,
                "upstream_port": bench.upstream_port, "loadavg_before": round(load_before, 2),
                "loadavg_after": round(os.getloadavg()[0], 2)}
    report.print_report(results, checks, matching, settings, comparisons)
    duration = time.monotonic() - started
    report.write_json(args.output, {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
        "duration_s": round(duration, 1),
        "settings": settings,
        "machine": machine_facts(),
        "scenarios": results,
        "route_matching": matching,
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
