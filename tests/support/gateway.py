"""Starts real `manage.py runproxy` processes against the test database, for end-to-end tests."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The URL of the database the tests use right now (pytest-django renamed it), for child processes."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgresql://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One request with the standard library: (status, headers, body), 4xx/5xx included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@dataclass
class Gateway:
    """A running `runproxy` process."""

    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log_path: Path
    stdout_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"runproxy exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, _, _ = http("GET", f"{self.url}/ready", timeout=2)
                admin_status, _, _ = http("GET", f"{self.admin_url}/ready", timeout=2)
                if status == 200 and admin_status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"runproxy not ready after {timeout} s:\n{self.log()}")

    def wait_version(self, version: int, timeout: float = 10) -> float:
        """Seconds until every worker that answers reports at least this configuration version."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            _, _, body = http("GET", f"{self.url}/health", timeout=2)
            if json.loads(body)["config_version"] >= version:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"version {version} not served within {timeout} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def access_lines(self) -> list[dict[str, Any]]:
        text = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_gateway(tmp_path: Path, *, workers: int = 1, grace: float = 10, extra_env: dict[str, str] | None = None,
                  wait: bool = True, background: bool | None = False, extra_args: tuple[str, ...] = ()) -> Gateway:
    """A `runproxy` on free ports. `background`: False adds --no-background (most tests need no Celery worker),
    True adds --with-background, None leaves runproxy's own default; `extra_args` go on its command line.

    A free port can be taken by another process (the other suite runs side by side) between the moment it is
    picked and runproxy binding it: runproxy then refuses to start, and a second pair of ports is tried."""
    for attempt in range(3):
        gateway = _launch(tmp_path, workers, grace, extra_env, background, extra_args)
        if not wait:
            return gateway
        try:
            gateway.wait_ready()
        except Exception:
            gateway.stop()
            if "address already in use" in gateway.log() and attempt < 2:
                continue
            raise
        return gateway
    raise AssertionError("unreachable")


def _launch(tmp_path: Path, workers: int, grace: float, extra_env: dict[str, str] | None,
            background: bool | None, extra_args: tuple[str, ...] = ()) -> Gateway:
    port, admin_port = free_port(), free_port()
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": test_database_url(),
        "RUSTA_VAR_DIR": str(tmp_path / "var"),
        "RUSTA_SECRET_KEY": "test-only-secret-key-not-used-anywhere-else-0123456789",
        "RUSTA_RELOAD_INTERVAL": "0.2",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log_path = tmp_path / f"runproxy-{port}.log"
    stdout_path = tmp_path / f"runproxy-{port}.out"
    flags = {False: ["--no-background"], True: ["--with-background"], None: []}[background]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runproxy", "--port", str(port), "--admin-port", str(admin_port),
         "--workers", str(workers), "--grace", str(grace), *flags, *extra_args],
        cwd=ROOT, env=env, stdout=stdout_path.open("wb"), stderr=log_path.open("wb"),
    )
    return Gateway(process, port, admin_port, log_path, stdout_path, env)


@contextmanager
def serving_gateway(tmp_path: Path, **options: Any) -> Iterator[Gateway]:
    """`start_gateway` once its workers serve configuration version 1; it must stop cleanly (exit 0) after."""
    running = start_gateway(tmp_path, **options)
    try:
        running.wait_version(1)
        yield running
    finally:
        assert running.stop() == 0
