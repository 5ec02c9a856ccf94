"""ProxyApp with shaping (transformations, cache, compression) wired in by a subclass, for the suite: the calls sit
exactly where ProxyApp itself should make them once the lead wires protocols.shaping in; until then the tests
of every operation run through this real proxy, under a real uvicorn, against the real test upstream.

As a process: `python -m tests.support.shaped ROUTES_PICKLE [REDIS_URL]` prints its port on the first stdout
line and serves until SIGTERM (a cache shared by two processes through Redis).
"""
from __future__ import annotations

import contextvars
import pickle
import sys
import time
from typing import Any

import uvloop

from protocols.cache import MemoryStore, RedisCacheStore, ResponseCache
from protocols.errors import ClientDisconnected, GatewayError, InternalGatewayError
from protocols.health import HEALTH_PATHS
from protocols.http import AccessLog, ProxyApp, ProxyOptions
from protocols.http.forwarding import Attempt, Exchange, forward, streamed_body
from protocols.http.headers import RequestHead, host_key, normalize_path, raw_path, scan_request_headers
from protocols.http.proxy import CLIENT_CLOSED, _read_body, log
from protocols.policies import MAX_REPLAY_BODY
from protocols.shaping import ResponseShaper, RouteShaping, edit_body, read_capped, through_cache
from protocols.table import CompiledRoute, LiveTable, RouteSpec, RouteTable
from tests.support.proxy import ProxyServer, _listening_socket, _uvicorn

_SHAPING: contextvars.ContextVar[tuple[RouteShaping, CompiledRoute, dict[str, str]] | None] = \
    contextvars.ContextVar("rusta_test_shaping", default=None)


class ShapedProxyApp(ProxyApp):
    """ProxyApp plus shaping. Routes without any of the four blocks take ProxyApp's own path untouched."""

    def __init__(self, options: ProxyOptions | None = None, access_log: AccessLog | None = None,
                 cache: ResponseCache | None = None) -> None:
        super().__init__(options, access_log)
        self.cache = cache or ResponseCache(MemoryStore())
        self._table: RouteTable | None = None
        self._shapings: dict[int, RouteShaping | None] = {}

    def shaping_of(self, route: CompiledRoute) -> RouteShaping | None:
        # The lead's version compiles this in CompiledRoute.__init__ (a `shaping` slot), at table build.
        table = self.state.table
        if table is not self._table:
            self._shapings = {r.id: RouteShaping.from_policies(r.spec.policies) for r in table.routes}
            self._table = table
        return self._shapings.get(route.id)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await super().__call__(scope, receive, send)
            return
        head = scan_request_headers(scope["headers"])
        path = raw_path(scope)
        clean_path = normalize_path(path)
        host = host_key(head.host)
        match = self.state.table.match(scope["method"], host, clean_path)
        shaping = self.shaping_of(match.route) if match.route is not None else None
        if shaping is None or match.route is None or match.route.protocol != "http":
            await super().__call__(scope, receive, send)
            return
        await self._shaped(scope, receive, send, head, path, clean_path, host, shaping, match.route, match.params)

    async def _shaped(self, scope: dict[str, Any], receive: Any, send: Any, head: RequestHead, path: str,
                      clean_path: str, host: str, shaping: RouteShaping, route: CompiledRoute,
                      params: dict[str, str]) -> None:
        started = time.time()
        clock = time.perf_counter()
        exchange = Exchange(b"")
        shaper: ResponseShaper | None = None
        try:
            exchange.request_id = self.request_ids.take(head.request_id)
            _SHAPING.set((shaping, route, params))
            attempt = self._prepare(scope, head, path, exchange)          # request rules: see _prepare below
            if head.has_body:
                await self._read_shaped_body(attempt, receive, head, exchange, shaping)
            shaper = ResponseShaper(send, shaping, scope["method"], clean_path, scope["headers"],
                                    exchange.request_id)

            async def exchange_upstream() -> None:
                if attempt.spec.total_timeout <= 0:
                    await forward(self.client, self.state, attempt, receive, shaper, exchange)
                else:
                    await self._forward_within_total(attempt, receive, shaper, exchange)

            if shaping.cache is not None:
                await through_cache(self.cache, shaping.cache, shaper, route.name, scope["method"], host,
                                    clean_path, scope.get("query_string", b""), scope["headers"], exchange_upstream)
            else:
                await exchange_upstream()
            exchange.status = shaper.status
            exchange.bytes_out = shaper.bytes_out
            exchange.answered = shaper.started
        except GatewayError as exc:
            if shaper is not None and not shaper.started:
                exchange.answered = False  # a held head (JSON being edited) never went out: answer the error
            await self._fail(send, exchange, exc)
        except ClientDisconnected:
            exchange.error = "client_disconnected"
            if not exchange.answered:
                exchange.status = CLIENT_CLOSED
        except Exception:
            log.exception("unexpected failure proxying %s %s", scope["method"], path)
            if shaper is not None and not shaper.started:
                exchange.answered = False
            await self._fail(send, exchange, InternalGatewayError())
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.record(
                started, exchange.request_id.decode("latin-1"), scope["method"], path, exchange.route,
                exchange.backend, exchange.status, time.perf_counter() - clock, exchange.bytes_in,
                exchange.bytes_out, client[0] if client else "", exchange.error,
            )

    def _prepare(self, scope: dict[str, Any], head: RequestHead, path: str, exchange: Exchange) -> Attempt:
        current = _SHAPING.get()
        request = current[0].request if current is not None else None
        if request is None:
            return super()._prepare(scope, head, path, exchange)
        # Header rules see the client's end-to-end fields, before X-Forwarded-*, Via and X-Request-ID are added.
        head.forward = request.apply_headers(head.forward)
        attempt = super()._prepare(scope, head, path, exchange)
        if request.path_rules or request.query_ops:
            assert current is not None
            _, route, params = current
            # The path rules run after {param} substitution.
            target = request.apply_path(route.upstream_path(params, normalize_path(path))).encode("latin-1")
            query = request.apply_query(scope.get("query_string", b""))
            attempt.target = target + b"?" + query if query else target
        return attempt

    async def _read_shaped_body(self, attempt: Attempt, receive: Any, head: RequestHead, exchange: Exchange,
                                shaping: RouteShaping) -> None:
        request = shaping.request
        if request is None or not request.body_applies(head.forward, head.content_length):
            await _read_body(attempt, receive, head, exchange)
            return
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away before sending its body")
        data, complete = await read_capped(receive, message.get("body", b""), message.get("more_body", False),
                                           request.max_body_bytes)
        exchange.bytes_in = len(data)
        if not complete:
            # Over the cap: what was read goes first, the rest streams after it, all untouched.
            exchange.body_read = False
            attempt.body = streamed_body(receive, data, exchange)
            attempt.retries = 0
            return
        body = edit_body(request, data, True)
        attempt.body = body
        attempt.content_length = len(body)
        if len(body) > MAX_REPLAY_BODY:
            attempt.retries = 0


class ShapedProxyServer(ProxyServer):
    """ProxyServer serving ShapedProxyApp; `cache` defaults to a fresh in-memory one."""

    def __init__(self, routes: list[RouteSpec], cache: ResponseCache | None = None, **options: Any) -> None:
        super().__init__(routes, **options)
        self.app = ShapedProxyApp(self.app.options, cache=cache)
        self._server = _uvicorn(self.app)
        self.cache = self.app.cache


def _main(routes_file: str, redis_url: str = "") -> None:
    with open(routes_file, "rb") as handle:
        routes = pickle.load(handle)
    state = LiveTable()
    state.install(RouteTable(routes, version=1))
    store = RedisCacheStore(redis_url, prefix="rusta-test:cache:") if redis_url else MemoryStore()
    app = ShapedProxyApp(ProxyOptions(state=state, access_log=False), cache=ResponseCache(store))
    sock = _listening_socket()
    print(sock.getsockname()[1], flush=True)
    server = _uvicorn(app)

    async def serve() -> None:
        await server.serve(sockets=[sock])
        await app.aclose()
        await app.cache.aclose()

    uvloop.run(serve())


if __name__ == "__main__":
    _main(*sys.argv[1:])
