"""The proxy listener with WebSocket tunnels and the FTP gateway under a real uvicorn (uvloop, httptools, the
websockets-sansio server that rusta/server.py runs), on an ephemeral loopback port: in a thread, or as a process.

`EdgeApp` routes as the lead's wiring will: "websocket" scopes to WebSocketProxy; "http" scopes to the FTP
gateway when an FTP route matches (by prefix), to ProxyApp otherwise.

As a process: `python -m tests.support.edge ROUTES_PICKLE [CA_PEM]` prints the port on its first stdout line and
serves until SIGTERM; the memory tests read its peak RSS from /proc.
"""
from __future__ import annotations

import socket
import ssl
import sys
from typing import Any

import uvicorn

from protocols.dataplane import DataPlane, ProxyOptions
from protocols.errors import ClientDisconnected, GatewayError
from protocols.http.headers import RequestIds, host_key, normalize_path, raw_path, scan_request_headers
from protocols.http.proxy import ProxyApp
from protocols.prefixes import match_prefix_route
from protocols.table import LiveTable, RouteSpec, RouteTable
from protocols.websocket import WebSocketOptions, WebSocketProxy
from tests.support.background import ServerProcess, UvicornThread, load_routes, serve_in_process


class EdgeApp:
    """One ASGI app for the proxy listener: WebSocket, FTP gateway, plain HTTP."""

    def __init__(self, state: LiveTable, ssl_context: ssl.SSLContext | None = None,
                 route_check_interval: float = 0.2) -> None:
        self.state = state
        self.dataplane = DataPlane(ProxyOptions(state=state, access_log=False, ssl_context=ssl_context))
        self.http = ProxyApp(dataplane=self.dataplane)
        self.websocket = WebSocketProxy(self.dataplane, WebSocketOptions(route_check_interval=route_check_interval))
        self.ftp = self.dataplane.ftp
        self.request_ids = RequestIds()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        head = scan_request_headers(scope["headers"])
        host = host_key(head.host)
        clean_path = normalize_path(raw_path(scope))
        plan = self.dataplane.current()
        match = plan.table.match(scope["method"], host, clean_path)
        if match.route is None or match.route.protocol == "ftp":
            found = match_prefix_route(plan.ftp_routes, host, clean_path)
            if found is not None:
                request_id = self.request_ids.take(head.request_id)
                try:
                    await self.ftp.handle(plan.routes[found.route.id], found.params, found.subpath, scope, receive,
                                          send, request_id, self.state.health)
                except ClientDisconnected:
                    pass  # nobody left to answer
                except GatewayError as exc:  # raised only before the response head, as documented
                    status, headers, body = exc.response(request_id.decode())
                    headers.append((b"x-request-id", request_id))
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                return
        await self.http(scope, receive, send)

    async def aclose(self) -> None:
        await self.websocket.aclose()
        await self.http.aclose()


class EdgeUvicorn(uvicorn.Server):
    """uvicorn, with the tunnels closed (1001) before its own shutdown would close them with 1012: the wiring
    rusta/server.py needs for the same result."""

    def __init__(self, config: uvicorn.Config, app: EdgeApp) -> None:
        super().__init__(config)
        self.edge = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.edge.websocket.aclose()
        await super().shutdown(sockets)


def _uvicorn(app: EdgeApp) -> uvicorn.Server:
    config = uvicorn.Config(app, loop="none", http="httptools", ws="websockets-sansio", lifespan="off",
                            access_log=False, proxy_headers=False, log_level="warning")
    return EdgeUvicorn(config, app)


class EdgeServer:
    """`with EdgeServer(routes) as edge:` serves those routes on `edge.port` from a background thread.

    `edge.state.install(RouteTable(...))` swaps the table as the watcher would; `edge.run(coro)` runs a
    coroutine on the server's loop (for `edge.app.aclose()`). The app is built on that loop, once started."""

    def __init__(self, routes: list[RouteSpec], ssl_context: ssl.SSLContext | None = None) -> None:
        self.state = LiveTable()
        self.state.install(RouteTable(routes, version=1))
        self._runner = UvicornThread(lambda: EdgeApp(self.state, ssl_context), _uvicorn, "test-edge")
        self.port: int = self._runner.port

    @property
    def app(self) -> EdgeApp | None:
        return self._runner.app

    def __enter__(self) -> EdgeServer:
        self._runner.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.stop()

    def install(self, routes: list[RouteSpec], version: int = 2) -> None:
        self.state.install(RouteTable(routes, version=version))

    def run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return self._runner.run(coroutine, timeout)


class EdgeProcess(ServerProcess):
    """EdgeApp in a child process of its own (`python -m tests.support.edge`), so its memory can be measured
    alone; with `ca_pem` it trusts that CA towards its backends."""

    def __init__(self, routes: list[RouteSpec], ca_pem: str | None = None) -> None:
        super().__init__("tests.support.edge", routes, *([ca_pem] if ca_pem else []))
        self.ca_pem = ca_pem


def _main(routes_file: str, ca_pem: str | None) -> None:
    state = LiveTable()
    state.install(RouteTable(load_routes(routes_file), version=1))
    context = ssl.create_default_context(cafile=ca_pem) if ca_pem else None
    serve_in_process(lambda: EdgeApp(state, context), _uvicorn)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
