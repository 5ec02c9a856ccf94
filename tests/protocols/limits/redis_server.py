"""A private redis-server on a spare loopback port, which a test may stop and start again (an outage)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """redis-server on 127.0.0.1:`port`, keeping nothing on disk, with `password` required when given and a
    unix socket at `socket_path` too. Only this object's own process is stopped."""

    def __init__(self, workdir: Path, password: str = "") -> None:
        self.workdir = workdir
        self.password = password
        self.socket_path = workdir / "redis.sock"
        self.port = spare_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning",
             "--unixsocket", str(self.socket_path),
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._cli("ping") == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """`redis-cli shutdown nosave`, as an operator would, then make sure our process is gone."""
        if self.process is None:
            return
        self._cli("shutdown", "nosave")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def _cli(self, *args: str) -> str:
        assert REDIS_CLI is not None
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        result = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *auth, *args],
                                capture_output=True, text=True, timeout=10)
        return result.stdout.strip()
