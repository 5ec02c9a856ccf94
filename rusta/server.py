"""The gateway process model: one supervisor binds both ports and forks N workers that share them.

Each worker runs the proxy and admin listeners on one uvloop event loop (uvicorn servers given the pre-bound
sockets) and a table watcher thread. SIGTERM stops accepting, lets requests in flight finish within the grace
period, and exits 0; a worker that dies unexpectedly is replaced.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator

log = logging.getLogger("rusta.server")


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    admin_host: str = "127.0.0.1"
    admin_port: int = 8001
    workers: int = 1
    grace: float = 20.0
    reload_interval: float = 0.5


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket shared by every worker (the kernel spreads connections among them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: Any, *, grace: float) -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server whose signals the worker handles, so two servers can share one loop."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        ws="websockets-sansio",
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is the proxy's business, decided by trusted proxies
        server_header=False,
        date_header=True,  # the proxy replaces the backend's Date, as nginx does
        timeout_keep_alive=60,
        timeout_graceful_shutdown=grace,
    )
    return QuietServer(config)


def run_worker(options: ServerOptions, proxy_sock: socket.socket, admin_sock: socket.socket) -> None:
    """The body of one worker process: never returns normally, exits 0 after a graceful stop."""
    import uvloop

    from routes.live import TableWatcher

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)

    from protocols.table import live
    from rusta import asgi

    watcher = TableWatcher(live, interval=options.reload_interval)
    watcher.start()
    proxy_app = asgi.ProxyApp(asgi.proxy_options())
    servers = [
        _uvicorn_server(asgi.build_proxy_application(proxy_app), grace=options.grace),
        _uvicorn_server(asgi.admin_application, grace=options.grace),
    ]

    def stop(*_: Any) -> None:
        for server in servers:
            server.should_exit = True

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)

    async def serve() -> None:
        await asyncio.gather(servers[0].serve([proxy_sock]), servers[1].serve([admin_sock]))
        await proxy_app.aclose()

    try:
        loop.run_until_complete(serve())
    finally:
        watcher.stop()
        sys.stdout.flush()
    os._exit(0)


class Supervisor:
    """Forks the workers, replaces any that die, and passes SIGTERM on for a graceful stop."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.children: dict[int, int] = {}  # pid -> worker index
        self.stopping = False

    def run(self) -> int:
        from django.db import connections

        proxy_sock = bind(self.options.host, self.options.port)
        admin_sock = bind(self.options.admin_host, self.options.admin_port)
        proxy_port = proxy_sock.getsockname()[1]
        admin_port = admin_sock.getsockname()[1]
        log.info("proxy listening on http://%s:%s", self.options.host, proxy_port)
        log.info("admin listening on http://%s:%s/admin/ (API under /api/, metrics at /metrics)",
                 self.options.admin_host, admin_port)
        connections.close_all()  # children must not share the parent's database connections
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        for index in range(self.options.workers):
            self._spawn(index, proxy_sock, admin_sock)
        restarts: list[float] = []
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            index = self.children.pop(pid, None)
            if index is None or self.stopping:
                continue
            log.error("worker %s (pid %s) exited with status %s; starting a new one", index, pid, status)
            restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
            if len(restarts) > 10 * self.options.workers:
                log.critical("workers keep dying; giving up")
                self._on_stop()
                return 1
            self._spawn(index, proxy_sock, admin_sock)
        log.info("all workers stopped")
        return 0

    def _spawn(self, index: int, proxy_sock: socket.socket, admin_sock: socket.socket) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                run_worker(self.options, proxy_sock, admin_sock)
            except BaseException:  # the worker must never fall back into the supervisor's loop
                log.exception("worker %s crashed", index)
            os._exit(1)
        self.children[pid] = index

    def _on_stop(self, *_: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: finishing requests in flight (grace %.0f s)", self.options.grace)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        signal.signal(signal.SIGALRM, self._on_deadline)
        signal.alarm(int(self.options.grace) + 5)

    def _on_deadline(self, *_: Any) -> None:
        for pid in list(self.children):
            log.error("worker pid %s did not stop in time; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
