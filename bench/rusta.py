"""Running Rusta for one bench scenario: a private database and environment, importconfig, `runproxy` (with its
TLS listener and the bench's certificate when asked), readiness, the measured run, memory and a clean stop."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from bench import tls
from bench.procs import BenchError, Processes, free_port, http_status, wait_until_ok, worker_memory
from bench.scenarios import Scenario

ROOT = Path(__file__).resolve().parent.parent
RUNPROXY = ROOT / "rusta" / "management" / "commands" / "runproxy.py"
IMPORTCONFIG = ROOT / "routes" / "management" / "commands" / "importconfig.py"
# Inherited settings that would point the bench at someone's real database, broker or tuning.
_SCRUBBED_PREFIXES = ("RUSTA_", "DJANGO_", "CELERY_")
_SCRUBBED = frozenset({"DATABASE_URL", "REDIS_URL"})
# The superuser that stores the TLS runs' certificate through the API (a private database, thrown away).
ADMIN_USER = "bench"
ADMIN_PASSWORD = "bench-only-password-7c1f"
PROBE_TIMEOUT_S = 10.0

Measure = Callable[[Scenario, int, "int | None"], dict[str, Any]]


def _mentions(path: Path, text: str) -> bool:
    return path.is_file() and text in path.read_text()


def missing_capability(scenario: Scenario, root: Path = ROOT) -> str | None:
    """Why the checkout at `root` cannot run `scenario` yet (a piece of issue 17 not merged), or None when it can.
    Read from the source, so that a run that fails later is a failure, not a skip."""
    runproxy = root / RUNPROXY.relative_to(ROOT)
    missing = [p.name for p in (runproxy, root / IMPORTCONFIG.relative_to(ROOT)) if not p.exists()]
    if missing:
        return f"{', '.join(missing)} not in this checkout yet"
    if scenario.tls and not _mentions(runproxy, "--tls-port"):
        return "runproxy has no --tls-port in this checkout yet (TLS listener)"
    if scenario.tls and not _mentions(root / "routes" / "api" / "urls.py", "certificates"):
        return "no /api/certificates/ in this checkout yet (certificates API)"
    # The HTTP/2 server side: some module of the proxy listener imports the h2 library.
    speaks_h2 = any(_mentions(module, "import h2") or _mentions(module, "from h2")
                    for module in (root / "protocols" / "http").rglob("*.py"))
    if scenario.tool in ("h2load", "grpc") and not speaks_h2:
        return "the proxy listener does not speak HTTP/2 in this checkout yet"
    if scenario.tool == "grpc" and not (_mentions(root / "routes" / "schema.py", '"grpc"')
                                        and (root / "protocols" / "grpc").is_dir()):
        return 'no protocol "grpc" routes in this checkout yet'
    return None


class RustaRunner:
    """Runs Rusta scenarios of one bench run; every database is a copy of one migrated once per run."""

    def __init__(self, procs: Processes, run_dir: Path, *, ports: tuple[int, int, int], cpu: str | None,
                 taken: set[int], measure: Measure, certificate: Callable[[], tls.BenchCertificate],
                 start_redis: Callable[[], tuple[Any, int]]) -> None:
        self.procs = procs
        self.run_dir = run_dir
        self.ports = ports  # preferred proxy, admin and TLS ports
        self.cpu = cpu
        self.taken = taken
        self.measure = measure
        self.certificate = certificate
        self.start_redis = start_redis
        self.template_db: Path | None = None

    def log_file(self, name: str) -> IO[bytes]:
        return open(self.run_dir / f"{name}.log", "ab")

    def env(self, db: Path, var_dir: Path, access_log: bool) -> dict[str, str]:
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
            self.manage(["migrate", "--noinput", "-v", "0"], self.env(db, self.run_dir / "var", False), "migrate")
            print(f"  migrated a fresh database in {time.monotonic() - started:.1f} s", flush=True)
            self.template_db = db
        return self.template_db

    def run(self, scenario: Scenario) -> dict[str, Any]:
        reason = missing_capability(scenario)
        if reason is not None:
            return {"status": "skipped", "reason": reason}
        template = self.migrated_db()
        db = self.run_dir / f"{scenario.name}.sqlite3"
        for stale in db.parent.glob(db.name + "*"):  # an earlier round's -wal would be replayed into the copy
            stale.unlink()
        for source in template.parent.glob(template.name + "*"):  # the -wal and -shm files too
            shutil.copyfile(source, db.parent / source.name.replace(template.name, db.name))
        env = self.env(db, self.run_dir / f"{scenario.name}-var", scenario.access_log)
        env.update(scenario.env)
        redis = None
        if scenario.redis:
            redis, redis_port = self.start_redis()
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        try:
            return self._run(scenario, env)
        finally:
            if redis is not None:
                self.procs.stop(redis, grace=5.0)

    def _run(self, scenario: Scenario, env: dict[str, str]) -> dict[str, Any]:
        routes = self.run_dir / f"{scenario.name}.routes.json"
        routes.write_text(json.dumps(scenario.routes, indent=2))
        self.manage(["importconfig", str(routes)], env, scenario.name)
        if scenario.tls:
            admin_env = {**env, "DJANGO_SUPERUSER_USERNAME": ADMIN_USER, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
                         "DJANGO_SUPERUSER_EMAIL": "bench@localhost"}
            self.manage(["ensureadmin"], admin_env, scenario.name)

        in_use = set(self.taken)
        port = free_port(self.ports[0], in_use)
        admin_port = free_port(self.ports[1], in_use)
        tls_port = free_port(self.ports[2], in_use) if scenario.tls else None
        log_path = self.run_dir / f"{scenario.name}.log"
        # --no-background: the Celery worker would share the proxy's pinned core; the bench measures the proxy.
        argv = [sys.executable, "manage.py", "runproxy", "--host", "127.0.0.1", "--port", str(port),
                "--admin-port", str(admin_port), "--workers", str(scenario.workers), "--no-background"]
        if tls_port is not None:
            argv += ["--tls-port", str(tls_port)]
        with self.log_file(scenario.name) as log:
            # With the access log on, its lines (stdout) go to /dev/null: we measure producing them, not a disk.
            proc = self.procs.start(argv, cpu=self.cpu if scenario.pinned else None, env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL if scenario.access_log else log, stderr=log)
        try:
            started = time.monotonic()
            try:
                wait_until_ok(proc, [(port, "/ready"), (admin_port, "/ready")], timeout=60)
            except BenchError as exc:
                raise BenchError(f"runproxy {exc}; see {log_path}") from None
            ready_s = time.monotonic() - started
            if tls_port is not None:
                tls.store_in_rusta(admin_port, ADMIN_USER, ADMIN_PASSWORD, self.certificate())
                # The gateway serves a stored certificate from its next table (reload interval 0.5 s).
                tls.wait_for_handshake(tls_port, timeout=10)
            load_port = tls_port if tls_port is not None else port
            if scenario.tool == "wrk":
                # The first request of a route may import its code (an llm route's providers): on a busy machine
                # that took more than a second, so the probe waits up to PROBE_TIMEOUT_S.
                status = http_status(load_port, scenario.path, timeout=PROBE_TIMEOUT_S, headers=scenario.headers,
                                     method=scenario.method, body=scenario.body, tls=scenario.tls)
                if status != 200:
                    raise BenchError(f"{scenario.method} {scenario.path} through Rusta answered {status}, not 200; "
                                     f"see {log_path}")
            measured = self.measure(scenario, load_port, proc.pid)
            measured["processes"] = [asdict(m) for m in worker_memory(proc.pid)]
            measured["ready_after_s"] = round(ready_s, 2)
        finally:
            stopped_by_itself = self.procs.stop(proc, grace=15.0)
        # Clean: it left on SIGTERM within the grace period, and with status 0.
        measured["clean_stop"] = stopped_by_itself and proc.returncode == 0
        measured["exit_status"] = proc.returncode
        return {"status": "ok", **measured}
