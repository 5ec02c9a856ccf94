"""Test servers in the background: a thread that says when it serves, and an ASGI app under a real uvicorn (uvloop,
httptools) on an ephemeral loopback port, in such a thread or in a child process of its own.

The proxy and edge helpers say only which app they serve and how uvicorn is configured; the running is here.
"""
from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, Self, TypeVar

import uvicorn
import uvloop

from protocols.table import RouteSpec

ROOT = Path(__file__).resolve().parents[2]


def start_thread(thread: threading.Thread, ready: threading.Event, what: str) -> None:
    """Start a server's thread and wait until the thread sets `ready` (its port is known and served)."""
    thread.start()
    if not ready.wait(10):
        raise RuntimeError(f"{what} did not start")


def listening_socket() -> socket.socket:
    """A socket on an ephemeral 127.0.0.1 port, already listening."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts: early connections wait in the backlog instead of being refused.
    sock.listen(128)
    return sock


class ClosableApp(Protocol):
    """An ASGI app that holds resources (pools, tunnels, log writers) to close after the server stops."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None: ...

    async def aclose(self) -> None: ...


App = TypeVar("App", bound=ClosableApp)


async def _serve(app: ClosableApp, server: uvicorn.Server, sock: socket.socket) -> None:
    await server.serve(sockets=[sock])
    await app.aclose()


class UvicornThread(Generic[App]):
    """Serves `make_app()` under `make_server(app)` on `port`, on uvloop in a daemon thread: `start()`, `stop()`.

    Both factories run on the thread's loop, so an app that binds to the running loop when built gets this one;
    `run(coroutine)` runs a coroutine there from the test's thread."""

    def __init__(self, make_app: Callable[[], App], make_server: Callable[[App], uvicorn.Server], name: str) -> None:
        self._make_app = make_app
        self._make_server = make_server
        self.app: App | None = None
        self.socket = listening_socket()
        self.port: int = self.socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        start_thread(self._thread, self._ready, f"the {self._thread.name} server")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(15)
        self.socket.close()

    def run(self, coroutine: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            app = self.app = self._make_app()
            self._server = self._make_server(app)
            self._ready.set()
            await _serve(app, self._server, self.socket)

        uvloop.run(main())


def serve_in_process(make_app: Callable[[], App], make_server: Callable[[App], uvicorn.Server]) -> None:
    """A `ServerProcess` child's body: its port on the first stdout line, then serve until SIGTERM."""
    sock = listening_socket()
    print(sock.getsockname()[1], flush=True)

    async def main() -> None:
        app = make_app()
        await _serve(app, make_server(app), sock)

    uvloop.run(main())


def load_routes(routes_file: str) -> list[RouteSpec]:
    """The routes a `ServerProcess` handed its child."""
    with open(routes_file, "rb") as handle:
        return pickle.load(handle)  # type: ignore[no-any-return]


class ServerProcess:
    """`python -m MODULE ROUTES_PICKLE ARGUMENTS...` in a child process of its own, so its memory can be measured
    alone. The child reports its port on its first stdout line and serves until SIGTERM."""

    def __init__(self, module: str, routes: list[RouteSpec], *arguments: str) -> None:
        self.routes = routes
        self.port = 0
        self._module = module
        self._arguments = arguments
        self._routes_file = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        with tempfile.NamedTemporaryFile("wb", suffix=".pickle", delete=False) as handle:
            pickle.dump(self.routes, handle)
        self._routes_file = handle.name
        self._process = subprocess.Popen([sys.executable, "-m", self._module, self._routes_file, *self._arguments],
                                         cwd=ROOT, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self._module} exited before reporting its port")
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

    def terminate(self) -> None:
        """SIGTERM, as a supervisor stops a worker (`__exit__` then waits for the exit)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def peak_rss_mib(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")
