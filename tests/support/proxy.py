"""ProxyApp under a real uvicorn (uvloop, httptools) on an ephemeral loopback port: in a thread, or as a process.

As a process: `python -m tests.support.proxy ROUTES_PICKLE [REDIS_URL]` prints the port on its first stdout line and
serves until SIGTERM; the memory tests read its peak RSS from /proc, the shared-cache tests run two on one Redis.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from protocols.cache import ResponseCache
from protocols.http import AccessLog, ProxyApp, ProxyOptions
from protocols.table import BackendSpec, LiveTable, RouteSpec, RouteTable

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


def route(name: str, path: str, port: int, *, methods: tuple[str, ...] = ("GET", "POST"), **extra: Any) -> RouteSpec:
    """A route to one backend on 127.0.0.1:`port`."""
    route_id = next(_ids)
    backend = BackendSpec(id=route_id, scheme="http", host="127.0.0.1", port=port)
    return RouteSpec(id=route_id, name=name, external_path=path, methods=methods, backends=(backend,), **extra)


def pool_route(name: str, path: str, ports: Iterable[int], *, methods: tuple[str, ...] = ("GET", "POST", "PUT"),
               **extra: Any) -> RouteSpec:
    """A route to several backends on 127.0.0.1, one per port (backend ids follow the route's)."""
    route_id = next(_ids)
    backends = tuple(BackendSpec(id=route_id * 100 + i, scheme="http", host="127.0.0.1", port=port)
                     for i, port in enumerate(ports))
    return RouteSpec(id=route_id, name=name, external_path=path, methods=methods, backends=backends, **extra)


@dataclass
class Reply:
    """A response as the client saw it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
         timeout: float = 10.0) -> Reply:
    """One request on a new connection, with exactly the given header fields (repeats allowed, in order)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        names = {name.lower() for name, _ in headers}
        conn.putrequest(method, target, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        conn.close()


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: early connections wait in the backlog instead of being refused.
    sock.listen(128)
    return sock


def _uvicorn(app: ProxyApp) -> uvicorn.Server:
    config = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="off", access_log=False,
                            proxy_headers=False, log_level="warning")
    return uvicorn.Server(config)


class ProxyServer:
    """`with ProxyServer(routes) as proxy:` serves those routes on `proxy.port` from a background thread.

    `settings` are the table's gateway-wide blocks (GatewaySettings); `cache` replaces the proxy's own response
    cache (a fresh in-memory one) when a test needs to see or drive it."""

    def __init__(self, routes: list[RouteSpec], access_log: AccessLog | None = None, *,
                 settings: dict[str, Any] | None = None, cache: ResponseCache | None = None,
                 **options: Any) -> None:
        state = self.state = LiveTable()  # tests publish health verdicts through state.install_health
        state.install(RouteTable(routes, version=1, settings=settings or {}))
        options.setdefault("access_log", access_log is not None)
        self.app = ProxyApp(ProxyOptions(state=state, **options), access_log=access_log)
        if cache is not None:
            self.app.cache = cache
        self.cache = self.app.cache
        self._socket = _listening_socket()
        self.port: int = self._socket.getsockname()[1]
        self._server = _uvicorn(self.app)
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)

    def __enter__(self) -> ProxyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
             timeout: float = 10.0) -> Reply:
        return call(self.port, method, target, headers, body, timeout)

    def _run(self) -> None:
        async def serve() -> None:
            await self._server.serve(sockets=[self._socket])
            await self.app.aclose()

        uvloop.run(serve())


class ProxyProcess:
    """The same, in a child process of its own, so its memory can be measured alone."""

    def __init__(self, routes: list[RouteSpec], redis_url: str = "") -> None:
        self.routes = routes
        self.redis_url = redis_url
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProxyProcess:
        with tempfile.NamedTemporaryFile("wb", suffix=".pickle", delete=False) as handle:
            pickle.dump(self.routes, handle)
        self._routes_file = handle.name
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.proxy", self._routes_file, self.redis_url], cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the proxy process exited before reporting its port")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.unlink(self._routes_file)

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def peak_rss_mib(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def _main(routes_file: str, redis_url: str = "") -> None:
    with open(routes_file, "rb") as handle:
        routes = pickle.load(handle)
    state = LiveTable()
    state.install(RouteTable(routes, version=1))
    app = ProxyApp(ProxyOptions(state=state, access_log=False, redis_url=redis_url))
    sock = _listening_socket()
    print(sock.getsockname()[1], flush=True)
    server = _uvicorn(app)

    async def serve() -> None:
        await server.serve(sockets=[sock])
        await app.aclose()

    uvloop.run(serve())


if __name__ == "__main__":
    _main(*sys.argv[1:3])
