"""The reference servers of a bench run, nginx and Caddy, started from bench/nginx and bench/caddy templates."""
from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.procs import BenchError, Processes, wait_until_ok

BENCH_DIR = Path(__file__).resolve().parent
NGINX_TEMPLATES = BENCH_DIR / "nginx"
CADDY_TEMPLATES = BENCH_DIR / "caddy"
CADDY = "/usr/bin/caddy"  # Debian's package: the binary the issue compares against
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def render(template: Path, run_dir: Path, **values: int | str) -> Path:
    """`template` with @RUN_DIR@ and each @KEY@ filled, written into `run_dir` without its .template suffix."""
    text = template.read_text().replace("@RUN_DIR@", str(run_dir))
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    leftover = _PLACEHOLDER.findall(text)
    if leftover:
        raise BenchError(f"{template.name}: placeholders left unfilled: {', '.join(sorted(set(leftover)))}")
    conf = run_dir / template.name.removesuffix(".template")
    conf.write_text(text)
    return conf


def wait_until_listening(proc: subprocess.Popen[Any], port: int, timeout: float) -> None:
    """Poll until something accepts TCP connections on 127.0.0.1:port (a TLS or HTTP/2-only listener, which a
    plain HTTP/1.1 probe cannot check); BenchError if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"exited with status {proc.returncode} before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"not listening on port {port} after {timeout:.0f} s") from None
        time.sleep(0.1)


def start_nginx(procs: Processes, run_dir: Path, template: str, cpu: str | None, check_path: str | None,
                **values: int | str) -> subprocess.Popen[Any]:
    """nginx with bench/nginx/`template`; ready when PORT answers `check_path` with 200 (None: when it listens)."""
    conf = render(NGINX_TEMPLATES / template, run_dir, **values)
    name = conf.stem
    # nginx makes its temp directories but not their parent; its workers (not root) must reach them.
    (run_dir / f"{name}-temp").mkdir(mode=0o755, exist_ok=True)
    error_log = run_dir / f"{name}.error.log"
    with open(run_dir / f"{name}.log", "ab") as log:
        proc = procs.start(["nginx", "-p", str(run_dir), "-c", str(conf), "-e", str(error_log)],
                           cpu=cpu, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(proc, int(values["PORT"]), check_path)
    except BenchError as exc:
        procs.stop(proc, grace=1.0)
        raise BenchError(f"nginx ({name}) {exc}; see {error_log}") from None
    return proc


def start_caddy(procs: Processes, run_dir: Path, template: str, cpu: str | None, check_path: str | None,
                **values: int | str) -> subprocess.Popen[Any]:
    """Debian's caddy on one Go thread (GOMAXPROCS=1) with bench/caddy/`template`; its data and config
    directories inside the run directory, so it never touches the user's."""
    if not Path(CADDY).is_file():
        raise BenchError(f"{CADDY} is not installed (apt-get install caddy)")
    conf = render(CADDY_TEMPLATES / template, run_dir, **values)
    home = run_dir / "caddy-home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "GOMAXPROCS": "1", "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    log_path = run_dir / f"{conf.name}.log"
    with open(log_path, "ab") as log:
        proc = procs.start([CADDY, "run", "--config", str(conf), "--adapter", "caddyfile"], cpu=cpu, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(proc, int(values["PORT"]), check_path)
    except BenchError as exc:
        procs.stop(proc, grace=1.0)
        raise BenchError(f"caddy ({conf.name}) {exc}; see {log_path}") from None
    return proc


def _wait(proc: subprocess.Popen[Any], port: int, check_path: str | None) -> None:
    if check_path is None:
        wait_until_listening(proc, port, timeout=10)
    else:
        wait_until_ok(proc, [(port, check_path)], timeout=10)
