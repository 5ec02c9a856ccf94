"""ProxyApp under a real uvicorn (uvloop, httptools) on an ephemeral loopback port: in a thread, or as a process.

As a process: `python -m tests.support.proxy ROUTES_PICKLE [REDIS_URL]` prints the port on its first stdout line and
serves until SIGTERM; the memory tests read its peak RSS from /proc, the shared-cache tests run two on one Redis.
"""
from __future__ import annotations

import http.client
import itertools
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import uvicorn

from protocols.cache import ResponseCache
from protocols.dataplane import DataPlane, ProxyOptions
from protocols.http import AccessLog
from protocols.http.listener import ListenerLimits, ListenerState, protocol_factory
from protocols.http.proxy import ProxyApp
from protocols.table import BackendSpec, LiveTable, RouteSpec, RouteTable
from protocols.tls import CertificateSpec
from protocols.tls.contexts import front_context
from tests.support.background import ServerProcess, UvicornThread, load_routes, serve_in_process
from tests.support.background import listening_socket as _listening_socket  # noqa: F401  (its old home)

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


def _uvicorn(app: ProxyApp, listener: ListenerState | None = None, tls: bool = False,
             keep_alive: float = 5.0) -> uvicorn.Server:
    """uvicorn as runproxy configures the proxy listener: its protocol is protocols.http.listener's; with `tls`,
    its TLS listener's front context (the certificates of the app's current table, by SNI)."""
    listener = listener or ListenerState(access_log=app.access_log)
    factory = None
    if tls:
        dataplane = app.dataplane
        front = front_context(lambda: dataplane.current().tls, dataplane.recorder.tls_handshake_failed)
        factory = lambda _config, _default: front  # noqa: E731
    # (uvicorn declares timeout_keep_alive an int; the listener compares it with seconds, so a fraction works.)
    config = uvicorn.Config(app, loop="uvloop", http=protocol_factory(listener), lifespan="off", access_log=False,
                            proxy_headers=False, log_level="warning", ssl_context_factory=factory,
                            timeout_keep_alive=keep_alive)  # type: ignore[arg-type]
    return uvicorn.Server(config)


class ProxyServer:
    """`with ProxyServer(routes) as proxy:` serves those routes on `proxy.port` from a background thread.

    `settings` are the table's gateway-wide blocks (GatewaySettings); `cache` replaces the proxy's own response
    cache (a fresh in-memory one) when a test needs to see or drive it; `listener` sets the listener's limits and
    `keep_alive` the server's keep-alive timeout (seconds). With `tls`, the port is the proxy's TLS listener,
    serving the table's `certificates` by SNI."""

    def __init__(self, routes: list[RouteSpec], access_log: AccessLog | None = None, *,
                 settings: dict[str, Any] | None = None, cache: ResponseCache | None = None,
                 listener: ListenerLimits | None = None, certificates: tuple[CertificateSpec, ...] = (),
                 keep_alive: float = 5.0, **options: Any) -> None:
        state = self.state = LiveTable()  # tests publish health verdicts through state.install_health
        state.install(RouteTable(routes, version=1, settings=settings or {}, certificates=certificates))
        tls = bool(options.get("tls"))
        options.setdefault("access_log", access_log is not None)
        app = self.app = ProxyApp(dataplane=DataPlane(ProxyOptions(state=state, **options), access_log, cache=cache))
        self.cache = app.cache
        self.listener = ListenerState(listener or ListenerLimits(), access_log=access_log)
        self._runner = UvicornThread(lambda: app, lambda app: _uvicorn(app, self.listener, tls, keep_alive),
                                     "test-proxy")
        self.port: int = self._runner.port

    def __enter__(self) -> ProxyServer:
        self._runner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.stop()

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method: str, target: str, headers: Iterable[tuple[str, str]] = (), body: bytes | None = None,
             timeout: float = 10.0) -> Reply:
        return call(self.port, method, target, headers, body, timeout)


class ProxyProcess(ServerProcess):
    """ProxyApp in a child process of its own (`python -m tests.support.proxy`), so its memory can be measured
    alone; with `redis_url` its response cache is shared through that Redis."""

    def __init__(self, routes: list[RouteSpec], redis_url: str = "") -> None:
        super().__init__("tests.support.proxy", routes, redis_url)
        self.redis_url = redis_url

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def _main(routes_file: str, redis_url: str = "") -> None:
    state = LiveTable()
    state.install(RouteTable(load_routes(routes_file), version=1))
    serve_in_process(lambda: ProxyApp(ProxyOptions(state=state, access_log=False, redis_url=redis_url)), _uvicorn)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
