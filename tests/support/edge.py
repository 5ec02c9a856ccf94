"""The proxy listener with WebSocket tunnels and the FTP gateway under a real uvicorn (uvloop, httptools, the
websockets-sansio server that rusta/server.py runs), on an ephemeral loopback port: in a thread, or as a process.

`EdgeApp` routes as the lead's wiring will: "websocket" scopes to WebSocketProxy; "http" scopes to the FTP
gateway when an FTP route matches (by prefix), to ProxyApp otherwise.

As a process: `python -m tests.support.edge ROUTES_PICKLE [CA_PEM]` prints the port on its first stdout line and
serves until SIGTERM; the memory tests read its peak RSS from /proc.
"""
from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn
import uvloop

from protocols.errors import ClientDisconnected, GatewayError
from protocols.ftp import FtpGateway, FtpOptions
from protocols.http import ProxyApp, ProxyOptions
from protocols.http.headers import RequestIds, host_key, normalize_path, raw_path, scan_request_headers
from protocols.table import LiveTable, RouteSpec, RouteTable
from protocols.websocket import WebSocketOptions, WebSocketProxy
from tests.support.proxy import _listening_socket

ROOT = Path(__file__).resolve().parents[2]


class EdgeApp:
    """One ASGI app for the proxy listener: WebSocket, FTP gateway, plain HTTP."""

    def __init__(self, state: LiveTable, ssl_context: ssl.SSLContext | None = None,
                 route_check_interval: float = 0.2) -> None:
        self.state = state
        self.http = ProxyApp(ProxyOptions(state=state, access_log=False, ssl_context=ssl_context))
        self.websocket = WebSocketProxy(WebSocketOptions(
            state=state, balancing=self.http.balancing, ssl_context=ssl_context,
            route_check_interval=route_check_interval,
        ))
        self.ftp = FtpGateway(FtpOptions(state=state, balancing=self.http.balancing, ssl_context=ssl_context))
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
        table = self.state.table
        match = table.match(scope["method"], host, clean_path)
        if match.route is None or match.route.protocol == "ftp":
            found = self.ftp.match(table, host, clean_path)
            if found is not None:
                request_id = self.request_ids.take(head.request_id)
                try:
                    await self.ftp.handle(found.route, found.params, found.subpath, scope, receive, send,
                                          request_id)
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
    coroutine on the server's loop (for `edge.app.aclose()`)."""

    def __init__(self, routes: list[RouteSpec], ssl_context: ssl.SSLContext | None = None) -> None:
        self.state = LiveTable()
        self.state.install(RouteTable(routes, version=1))
        self._ssl_context = ssl_context
        self.app: EdgeApp | None = None
        self._socket = _listening_socket()
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-edge", daemon=True)

    def __enter__(self) -> EdgeServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the edge server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()

    def install(self, routes: list[RouteSpec], version: int = 2) -> None:
        self.state.install(RouteTable(routes, version=version))

    def run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self.app = EdgeApp(self.state, self._ssl_context)
            self._server = _uvicorn(self.app)
            self._ready.set()
            await self._server.serve(sockets=[self._socket])
            await self.app.aclose()

        uvloop.run(serve())


class EdgeProcess:
    """The same, in a child process of its own, so its memory can be measured alone."""

    def __init__(self, routes: list[RouteSpec], ca_pem: str | None = None) -> None:
        self.routes = routes
        self.ca_pem = ca_pem
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EdgeProcess:
        with tempfile.NamedTemporaryFile("wb", suffix=".pickle", delete=False) as handle:
            pickle.dump(self.routes, handle)
        self._routes_file = handle.name
        command = [sys.executable, "-m", "tests.support.edge", self._routes_file]
        if self.ca_pem:
            command.append(self.ca_pem)
        self._process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the edge process exited before reporting its port")
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

    def terminate(self) -> None:
        """SIGTERM, as a supervisor stops a worker (`__exit__` then waits for the exit)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def peak_rss_mib(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        assert self._process is not None
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")


def _main(routes_file: str, ca_pem: str | None) -> None:
    with open(routes_file, "rb") as handle:
        routes = pickle.load(handle)
    state = LiveTable()
    state.install(RouteTable(routes, version=1))
    context = ssl.create_default_context(cafile=ca_pem) if ca_pem else None
    sock = _listening_socket()
    print(sock.getsockname()[1], flush=True)

    async def serve() -> None:
        app = EdgeApp(state, context)
        server = _uvicorn(app)
        await server.serve(sockets=[sock])
        await app.aclose()

    uvloop.run(serve())


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
