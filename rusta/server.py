"""The gateway process model: one supervisor binds both ports and forks N workers that share them.

Each worker runs the proxy and admin listeners on one uvloop event loop (uvicorn servers given the pre-bound
sockets), the proxy's TLS listener when `tls_port` is set (the same application and protocol, with the
certificates of the table served now, picked by SNI: protocols.tls.contexts), the DNS forwarder when `dns_port`
is set (UDP and TCP sockets bound by the supervisor too), and a table watcher thread. SIGTERM stops accepting,
closes WebSocket tunnels with 1001, lets requests in flight finish within the grace period, and exits 0; a worker
that dies unexpectedly is replaced.

With `background` on (the default on the embedded broker), the supervisor also runs the background work: one
Celery worker with an embedded beat (health checks), started as a child in its own process group, restarted if
it dies, and stopped with the workers.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

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
    background: bool = False
    background_log_level: str = "WARNING"
    dns_port: int | None = None  # None: no DNS listeners (DNS over HTTPS on the proxy port still works)
    tls_host: str = ""  # "": `host`
    tls_port: int | None = None  # None: no TLS listener


class ListenError(OSError):
    """A listener's socket could not be bound; the message names the listener, its host and its port."""

    def __init__(self, listener: str, host: str, port: int, cause: OSError) -> None:
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = cause.strerror or str(cause)
        super().__init__(cause.errno, f"cannot listen on {address} ({listener}): {reason[:1].lower()}{reason[1:]}")

    def __str__(self) -> str:
        return str(self.strerror)


def bind(host: str, port: int, listener: str) -> socket.socket:
    """A listening TCP socket shared by every worker (the kernel spreads connections among them).

    `listener` names it in the ListenError raised when the address cannot be had ("the proxy listener")."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(listener, host, port, exc) from exc
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: Any, *, grace: float, before_shutdown: Callable[[], Awaitable[None]] | None = None,
                    http: Any = "httptools", ssl_context: ssl.SSLContext | None = None) -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server whose signals the worker handles, so two servers can share one loop.

        `before_shutdown` runs when the server starts shutting down, before uvicorn closes its connections:
        the proxy listener closes its WebSocket tunnels there with 1001 (uvicorn's own close would be 1012)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if before_shutdown is not None:
                for server in self.servers:
                    server.close()  # stop accepting first, as uvicorn's own shutdown does (twice is harmless)
                await before_shutdown()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        loop="none",
        http=http,  # the proxy listener's: protocols.http.listener (RFC 9112 held strictly)
        ws="websockets-sansio",
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For is the proxy's business, decided by trusted proxies
        server_header=False,
        date_header=True,  # the proxy replaces the backend's Date, as nginx does
        timeout_keep_alive=60,
        # Declared int by uvicorn, used as asyncio.wait_for's timeout: a fraction of a second works.
        timeout_graceful_shutdown=grace,  # type: ignore[arg-type]
        # The TLS listener's: the front context, whose SNI callback picks the current table's certificates.
        ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context is not None else None,
    )
    return QuietServer(config)


def run_worker(options: ServerOptions, proxy_sock: socket.socket, admin_sock: socket.socket,
               dns_socks: tuple[socket.socket, socket.socket] | None = None,
               tls_sock: socket.socket | None = None) -> None:
    """The body of one worker process: never returns normally, exits 0 after a graceful stop."""
    import uvloop

    from routes.cache_purges import PurgeFollower
    from routes.live import TableWatcher

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)

    from django.conf import settings

    from metrics.abuse.flush import AbuseFlush, plan_routes
    from metrics.worker import WorkerMetrics
    from protocols.http.listener import ListenerLimits, ListenerState, protocol_factory
    from protocols.recorder import recorder
    from protocols.table import live
    from protocols.tracing.otlp import OtlpExporter
    from rusta import asgi

    https_port = tls_sock.getsockname()[1] if tls_sock is not None else None
    dataplane = asgi.DataPlane(asgi.proxy_options(https_port=https_port))
    # Admin and API cache purges reach this worker's cache; the follower's first poll marks where it starts.
    watcher = TableWatcher(live, interval=options.reload_interval, purges=PurgeFollower(dataplane.cache))
    watcher.start()
    worker_metrics = WorkerMetrics(budgets=dataplane.llm.budgets, abuse=AbuseFlush(
        dataplane.abuse, dataplane.sanctions, plan_routes(lambda: dataplane.plan)))
    worker_metrics.start(loop)
    ws_app = asgi.WebSocketProxy(dataplane)
    recorder.websocket_source = ws_app.metrics.snapshot  # its counters go out with this worker's figures
    listener = ListenerState(ListenerLimits.from_settings(settings), access_log=dataplane.access_log)
    proxy_app = asgi.build_proxy_application(dataplane, websocket=ws_app)
    closing: list[asyncio.Future[None]] = []

    async def close_tunnels() -> None:
        """Once, however many proxy listeners stop: they share the WebSocket app and its tunnels."""
        if not closing:
            closing.append(asyncio.ensure_future(ws_app.aclose()))
        await asyncio.shield(closing[0])

    servers = [
        _uvicorn_server(proxy_app, grace=options.grace, before_shutdown=close_tunnels,
                        http=protocol_factory(listener)),
        _uvicorn_server(asgi.admin_application, grace=options.grace),
    ]
    sockets = [[proxy_sock], [admin_sock]]
    if tls_sock is not None:
        from protocols.tls.contexts import front_context

        front = front_context(lambda: dataplane.current().tls, dataplane.recorder.tls_handshake_failed)
        # Its own ListenerState: the same limits, its own connection counts and sweep.
        tls_listener = ListenerState(ListenerLimits.from_settings(settings), access_log=dataplane.access_log)
        servers.append(_uvicorn_server(proxy_app, grace=options.grace, before_shutdown=close_tunnels,
                                       http=protocol_factory(tls_listener), ssl_context=front))
        sockets.append([tls_sock])

    def stop(*_: Any) -> None:
        for server in servers:
            server.should_exit = True

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_signal_handler(signal.SIGINT, stop)

    async def serve() -> None:
        # On the running loop: uvloop only hears a signal (the supervisor's SIGTERM) once its loop runs.
        settle_heap()
        await worker_metrics.seed_budgets()  # LLM spend kept across restarts, before the first request
        if dns_socks is not None:
            await dataplane.dns.start_sockets(*dns_socks)
        dataplane.cache.bind_loop()  # purges posted by the watcher's thread run on this loop
        await asyncio.gather(*(server.serve(socks) for server, socks in zip(servers, sockets, strict=True)))
        await dataplane.aclose()  # the DNS listeners too
        if isinstance(dataplane.spans, OtlpExporter):  # send the spans still queued to the collector
            await asyncio.to_thread(dataplane.spans.shutdown, 3.0)
        await worker_metrics.stop()

    try:
        loop.run_until_complete(serve())
    finally:
        watcher.stop()
        sys.stdout.flush()
    os._exit(0)


# Young objects the collector lets pile up before a collection: requests leave few cycles behind, so a larger
# first generation means fewer collections, each no longer (it walks only what is still alive).
GC_YOUNG_THRESHOLD = 7000


def settle_heap() -> None:
    """Before a worker serves: what start-up loaded (Django, the route table, every module) lives as long as the
    worker, so move it out of the cyclic collector's reach. A full collection walked all ~115,000 of those
    objects, pausing the event loop for tens of milliseconds; young collections become rarer too."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def background_command(options: ServerOptions) -> list[str]:
    """The Celery worker with an embedded beat that runs the background work of one gateway."""
    from django.conf import settings

    return [
        sys.executable, "-m", "celery", "-A", "rusta", "worker", "--beat",
        "--pool", "solo", "--concurrency", "1", "--loglevel", options.background_log_level,
        "--schedule-filename", str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
        # One worker per gateway: no peers to synchronise with at start-up or to gossip with.
        "--without-mingle", "--without-gossip", "--without-heartbeat",
        "--hostname", f"rusta-gateway-{os.getpid()}@%h",
    ]


class Supervisor:
    """Forks the workers, replaces any that die, and passes SIGTERM on for a graceful stop."""

    # More background restarts than this within a minute and the gateway keeps serving without them.
    MAX_BACKGROUND_RESTARTS = 5

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.children: dict[int, int] = {}  # pid -> worker index
        self.background_pid: int | None = None
        self.background_restarts: list[float] = []
        self.stopping = False

    def run(self) -> int:
        from django.conf import settings
        from django.db import connections

        from protocols.dns import bind_dns_sockets

        proxy_sock = bind(self.options.host, self.options.port, "the proxy listener")
        admin_sock = bind(self.options.admin_host, self.options.admin_port, "the admin listener")
        tls_host = self.options.tls_host or self.options.host
        tls_sock = (bind(tls_host, self.options.tls_port, "the proxy's TLS listener")
                    if self.options.tls_port is not None else None)
        dns_socks = None
        if self.options.dns_port is not None:
            try:
                dns_socks = bind_dns_sockets(self.options.host, self.options.dns_port)
            except OSError as exc:
                raise ListenError("the DNS listener", self.options.host, self.options.dns_port, exc) from exc
        proxy_port = proxy_sock.getsockname()[1]
        admin_port = admin_sock.getsockname()[1]
        log.info("proxy listening on http://%s:%s", self.options.host, proxy_port)
        if tls_sock is not None:
            log.info("proxy listening on https://%s:%s", tls_host, tls_sock.getsockname()[1])
        log.info("admin listening on http://%s:%s/admin/ (API under /api/, metrics at /metrics)",
                 self.options.admin_host, admin_port)
        if dns_socks is not None:
            log.info("DNS forwarder listening on %s:%s (UDP and TCP)", self.options.host,
                     dns_socks[0].getsockname()[1])
        log.info("this gateway's own state (workers' metrics files, beat schedule, disk broker): %s",
                 settings.INSTANCE_DIR)
        sockets = (proxy_sock, admin_sock, dns_socks, tls_sock)
        inherited = [proxy_sock.fileno(), admin_sock.fileno(), *(s.fileno() for s in dns_socks or ()),
                     *([tls_sock.fileno()] if tls_sock is not None else [])]
        connections.close_all()  # children must not share the parent's database connections
        from metrics.worker import reset_shared_folder

        reset_shared_folder()  # this gateway's counters start from zero, as Prometheus expects of a restart
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        for index in range(self.options.workers):
            self._spawn(index, *sockets)
        if self.options.background:
            self._spawn_background(inherited)
        else:
            log.warning("background work is not started by this gateway: health checks, metrics rollups and "
                        "retention need one `celery -A rusta worker --beat` (or workers and exactly one "
                        "`celery -A rusta beat`) running against the same database and broker (or `runproxy "
                        "--with-background`); /health and /ready say \"degraded\" and the admin shows a banner "
                        "while none has reported for %.0f s", settings.RUSTA_BACKGROUND_STALE_AFTER)
        restarts: list[float] = []
        while self.children or self.background_pid is not None:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == self.background_pid:
                self._background_exited(status, inherited)
                continue
            replaced = self.children.pop(pid, None)
            if replaced is None or self.stopping:
                continue
            log.error("worker %s (pid %s) exited with status %s; starting a new one", replaced, pid, status)
            restarts = [t for t in restarts if time.monotonic() - t < 60] + [time.monotonic()]
            if len(restarts) > 10 * self.options.workers:
                log.critical("workers keep dying; giving up")
                self._on_stop()
                return 1
            self._spawn(replaced, *sockets)
        log.info("all workers stopped")
        return 0

    def _spawn(self, index: int, proxy_sock: socket.socket, admin_sock: socket.socket,
               dns_socks: tuple[socket.socket, socket.socket] | None, tls_sock: socket.socket | None) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                run_worker(self.options, proxy_sock, admin_sock, dns_socks, tls_sock)
            except BaseException:  # the worker must never fall back into the supervisor's loop
                log.exception("worker %s crashed", index)
            os._exit(1)
        self.children[pid] = index

    def _spawn_background(self, inherited_fds: list[int]) -> None:
        """Start the Celery worker (and its beat) in a process group of its own, so that stopping it reaches
        the beat process too, and without the listening sockets, which only the gateway workers may hold."""
        from django.conf import settings

        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH", "")]))
        command = background_command(self.options)
        # Its banner and logs go to stderr: stdout is the access log.
        actions: list[tuple[int, ...]] = [(os.POSIX_SPAWN_DUP2, 2, 1)]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in inherited_fds]
        sys.stdout.flush()
        sys.stderr.flush()
        self.background_pid = os.posix_spawn(command[0], command, env, file_actions=actions, setpgroup=0,
                                             setsigdef=(signal.SIGPIPE,))
        log.info("background worker started: Celery worker with beat (pid %s)", self.background_pid)

    def _background_exited(self, status: int, inherited_fds: list[int]) -> None:
        pid, self.background_pid = self.background_pid, None
        assert pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # its beat process, if the worker died without stopping it
        if self.stopping:
            return
        now = time.monotonic()
        self.background_restarts = [t for t in self.background_restarts if now - t < 60] + [now]
        if len(self.background_restarts) > self.MAX_BACKGROUND_RESTARTS:
            log.critical("the background worker keeps dying; serving on without health checks")
            return
        log.error("background worker (pid %s) exited with status %s; starting a new one", pid, status)
        self._spawn_background(inherited_fds)

    def _on_stop(self, *_: Any) -> None:
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: finishing requests in flight (grace %.0f s)", self.options.grace)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self.background_pid is not None:
            # The worker stops its beat itself (a warm shutdown); the group is killed once the worker has gone.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.background_pid, signal.SIGTERM)
        signal.signal(signal.SIGALRM, self._on_deadline)
        signal.alarm(int(self.options.grace) + 5)

    def _on_deadline(self, *_: Any) -> None:
        for pid in list(self.children):
            log.error("worker pid %s did not stop in time; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.background_pid is not None:
            log.error("background worker pid %s did not stop in time; killing it", self.background_pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.background_pid, signal.SIGKILL)
