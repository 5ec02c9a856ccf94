"""The ASGI application of the proxy listener: match a route, pick a backend, stream the exchange, answer errors."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from protocols.abuse.counters import anonymous_identity, client_identity
from protocols.abuse.sanctions import LimitChange, Sanction, judge
from protocols.apidocs.sampler import DocsSample, sampled
from protocols.dataplane import DataPlane, ProxyOptions
from protocols.dns import doh_app
from protocols.errors import (
    ClientBlocked,
    ClientDisconnected,
    GatewayError,
    HttpsRedirect,
    InternalGatewayError,
    MethodNotAllowed,
    NoRoute,
    UpstreamTotalTimeout,
    protocol_error,
)
from protocols.grpc import answer_error, check_call, forward_call, is_grpc_request
from protocols.guards import preflight_method
from protocols.health import HealthApp
from protocols.http.access import Pending, RouteAccess
from protocols.http.accesslog import AccessLog
from protocols.http.forwarding import Attempt, Exchange, buffered_body, forward, streamed_body
from protocols.http.headers import (
    VIA,
    VIA_HTTP2,
    RequestHead,
    answer_head,
    client_address,
    host_key,
    normalize_path,
    raw_path,
    scan_request_headers,
)
from protocols.http.llm_routes import serve_llm
from protocols.http.plugins import GuardedSend, RouteMisconfigured, backend_views
from protocols.plan import HEALTH, RoutePlan, TablePlan
from protocols.plugins import PluginRun
from protocols.resilience import MAX_REPLAY_BODY
from protocols.shaping import ResponseShaper, edit_body, read_capped, through_cache
from protocols.tls.clients import client_subject
from protocols.tls.policy import TlsPolicy
from protocols.tracing import traceparent_from

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

_METHODS = {m: m.encode() for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
_SCHEMES = {"http": b"http", "https": b"https"}
# The client's view of the exchange (499, as nginx logs it) when it left before an answer could be sent.
CLIENT_CLOSED = 499


class ProxyApp:
    """ASGI 3 application for the proxy listener ("http" scopes only; rusta.asgi routes the rest elsewhere).

    It never imports Django and never touches the ORM: it serves the live table (`state.table`, which the table
    watcher replaces as a whole) through its plan (protocols.plan), which its DataPlane holds and which says
    what each route does and which paths come before route matching: /health, /ready and /live, and DNS over
    HTTPS (protocols.dns.doh) when the table has dns routes. The plan's ftp routes are served by the data
    plane's FTP gateway (by path prefix); every other route by forwarding. Every request is reported to the
    metrics recorder. Call `await app.aclose()` at shutdown: it closes the DataPlane (pooled connections, the
    DNS listeners, the rate-limit and cache stores, the access log).
    """

    def __init__(self, options: ProxyOptions | None = None, access_log: AccessLog | None = None, *,
                 dataplane: DataPlane | None = None) -> None:
        # The process's DataPlane (rusta.asgi gives the same one to the WebSocket app), else one of its own.
        dataplane = dataplane or DataPlane(options, access_log)
        self.dataplane = dataplane
        self.options = options = dataplane.options
        self.state = dataplane.state
        self.client = dataplane.client
        self.trusted = dataplane.trusted
        self.request_ids = dataplane.request_ids
        self.access_log = dataplane.access_log
        self.recorder = dataplane.recorder
        self.spans = dataplane.spans
        self.decide = dataplane.spans.decide if dataplane.spans is not None else None  # its sampler
        self.cache = dataplane.cache
        self.ftp = dataplane.ftp
        self.llm = dataplane.llm
        self.dns = dataplane.dns
        self.abuse = dataplane.abuse  # counters of the routes with an `abuse` block
        self.sanctions = dataplane.sanctions  # the verdicts and personalized limits in force
        self.health = HealthApp(options.health, dataplane.state)  # /health, /ready and /live, for this table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"ProxyApp serves 'http' scopes, not {scope['type']!r}")
        plan = self.dataplane.plan
        if plan.table is not self.state.table:
            plan = self.dataplane.current()
        if scope["path"] in plan.paths:  # health always, DNS over HTTPS when the table has dns routes
            if plan.paths[scope["path"]] == HEALTH:
                await self.health(scope, receive, send)
            else:
                await doh_app(scope, receive, send, self.dns)
            return
        started = time.time()
        clock = time.perf_counter()
        exchange = Exchange(b"")
        path = scope["path"]
        metrics = self.recorder
        run: PluginRun | None = None  # the route's plugins, when it runs any
        attempt: Attempt | None = None
        metrics.connection_opened()
        try:
            try:
                head = scan_request_headers(scope["headers"])
                exchange.request_id = self.request_ids.take(head.request_id)
                path = raw_path(scope)
                self._locate(scope, head, path, exchange)
                if plan.ftp_routes and await self._ftp_exchange(scope, receive, send, exchange, plan):
                    pass
                elif plan.llm_routes and await serve_llm(self.llm, plan, scope, receive, send, exchange):
                    pass
                else:
                    attempt = self._prepare(scope, send, head, exchange, plan)
                    if exchange.sample is not None:  # the answer goes through the route's api_docs sample
                        send = exchange.sample
                    if attempt is None:  # a CORS preflight the gateway answers itself
                        await self._preflight(send, exchange)
                    elif attempt.spec.protocol == "grpc":
                        await self._call_grpc(scope, receive, send, attempt, exchange)
                    elif attempt.plugins is not None:
                        # Every answer from here on, the gateway's own errors included, goes through the run.
                        send = run = PluginRun(attempt.plugins, send, scope, exchange.route or "",
                                               exchange.clean_path, exchange.client_ip,
                                               exchange.request_id.decode("latin-1"))
                        await self._plugged(scope, receive, run, head, attempt, exchange)
                    else:
                        if attempt.access is not None or attempt.judged is not None:
                            await self._admit(attempt, attempt.access, scope, exchange)
                        if head.has_body:
                            if attempt.guards is not None:
                                receive = attempt.guards.limit_receive(receive)
                            await _read_body(attempt, receive, head, exchange)
                        # The route's CORS and security fields go on every answer: answer_head adds them to
                        # the heads forwarding.respond and _fail build; a shaped answer gets them on its way out,
                        # through the route's GuardedSend.
                        if attempt.shaping is not None:
                            guard = exchange.guard
                            await self._forward_shaped(scope, attempt, receive, send if guard is None else guard,
                                                       exchange)
                        elif attempt.spec.total_timeout <= 0:
                            # Awaited from here rather than from a helper: one coroutine frame fewer on every
                            # resume.
                            await forward(self.client, self.state, attempt, receive, send, exchange, metrics)
                        else:
                            await self._forward_within_total(attempt, receive, send, exchange)
            except GatewayError as exc:
                await self._fail(scope, send, exchange, exc)
            except ClientDisconnected:
                # The listener answers a stalled body itself (408) and says so in the scope's state.
                refused = scope["state"].get("rusta.refused") if "state" in scope else None
                exchange.error = refused[1] if refused else "client_disconnected"
                if not exchange.answered:
                    exchange.status = refused[0] if refused else CLIENT_CLOSED
            except Exception:  # the last resort: Rusta answers 502, never 500
                if not exchange.request_id:
                    exchange.request_id = self.request_ids.take(b"")
                log.exception("unexpected failure proxying %s %s (request %s)", scope["method"], path,
                              exchange.request_id.decode("latin-1"))
                await self._fail(scope, send, exchange, InternalGatewayError())
            duration = time.perf_counter() - clock
            if run is not None and attempt is not None:
                # The log phase (AI routing's strategies learn there: a plain method runs at once).
                run.finished(exchange.status, duration, attempt.runtime.position(attempt.served), exchange.upstream_s)
            metrics.record_request(exchange.route, scope["method"], exchange.status, duration, exchange.upstream_s,
                                   exchange.bytes_in, exchange.bytes_out, exchange.backend, exchange.error,
                                   exchange.consumer)
            if exchange.abuse is not None:  # the route counts what each client does (protocols.abuse)
                self._count_client(scope, exchange)
            if exchange.grpc_status is not None:
                metrics.grpc_call(exchange.route, exchange.grpc_status)
            if exchange.sample is not None and exchange.error is None:
                exchange.sample.finish()
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.record(
                    started, exchange.request_id.decode("latin-1"), scope["method"], path, exchange.route,
                    exchange.backend, exchange.status, duration, exchange.bytes_in, exchange.bytes_out,
                    client[0] if client else "", exchange.error, exchange.trace_id, exchange.ai,
                    exchange.consumer, exchange.grpc_status,
                )
            spans = self.spans
            if spans is not None and exchange.traceparent:
                spans.finish(scope["method"], path, exchange.route, exchange.status, started, duration,
                             exchange.traceparent, head.traceparent, exchange.backend, exchange.error,
                             exchange.request_id)
        finally:
            metrics.connection_closed()

    async def _ftp_exchange(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange,
                            plan: TablePlan) -> bool:
        """Serve the request through the FTP gateway when an ftp route covers its path (by prefix) and no more
        exact http or websocket route matches it; False when it is not an FTP request. The route's guards apply
        as on HTTP routes. FtpGateway.handle raises a GatewayError only before the response head,
        ClientDisconnected if the client leaves."""
        found = plan.ftp_route(scope["method"], exchange.host, exchange.clean_path)
        if found is None:
            return False
        exchange.route = found.route.name
        route_plan = plan.routes[found.route.id]
        guards = route_plan.guards
        if route_plan.broken or guards is None:
            raise RouteMisconfigured(found.route.name)
        exchange.guard = guard = GuardedSend.for_request(send, guards, scope["headers"], exchange.https)
        guards.check_request(scope, exchange.client_ip)
        out = await self.ftp.handle(route_plan, found.params, found.subpath, scope, guards.limit_receive(receive),
                                    guard, exchange.request_id, self.state.health)
        exchange.status, exchange.answered, exchange.backend = out.status, out.started, out.backend or None
        exchange.bytes_in, exchange.bytes_out, exchange.error = out.bytes_in, out.bytes_out, out.error or None
        return True

    async def _balance(self, run: PluginRun, attempt: Attempt, exchange: Exchange) -> None:
        """The `balance` phase (AI routing's, and any plugin's that chooses backends): its choice is the first
        attempt's preferred backend, which balancing passes over when it is down or behind an open breaker."""
        body = attempt.body if isinstance(attempt.body, bytes) else attempt.body_head
        size = attempt.content_length if attempt.content_length is not None else len(body)
        chosen = await run.balance(body, size, backend_views(attempt.runtime, self.state.health))
        if chosen is not None:
            plugin, choice = chosen
            attempt.preferred = choice.index
            exchange.ai = (plugin.label, choice.source or plugin.name)

    async def _admit(self, attempt: Attempt, access: RouteAccess | None, scope: Scope,
                     exchange: Exchange) -> str | None:
        """The route's JWT and rate limit, before the body is read and a backend picked: the principal's claim
        headers replace any the client sent, and a limited route's answer gets its RateLimit-* fields. Returns
        the authenticated subject, when there is one (for the plugins' `access` phase).

        On a route with sanctions in force (`attempt.judged`, protocols.abuse.sanctions), a blocked address, or a
        blocked API key, is refused before any credential is checked; then the client the request counts for is
        judged (protocols.abuse.counters' identity), and its lowered or personalized limit goes to the rate
        limit."""
        headers = scope["headers"]
        judged = attempt.judged
        change: LimitChange | None = None
        if judged is not None:
            address = "ip:" + exchange.client_ip
            change = self._judge(judged, address, exchange)
            anonymous = anonymous_identity(headers, exchange.client_ip)  # an API key's, when one is presented
            if anonymous != address:
                change = self._judge(judged, anonymous, exchange) or change
        if access is None:
            return None
        # The steps without a coroutine of their own when they need not wait (a cached token, a local counter):
        # most requests of a limited route with JWT.
        known = access.identify_now(headers)
        principal, exchange.consumer = known if known is not None else await access.identify(headers)
        subject = principal.subject if principal is not None else None
        exchange.subject = subject
        if judged is not None and (exchange.consumer or subject):
            # The credential's own sanction, if it has one, else what its address already got.
            change = self._judge(judged, client_identity(exchange.consumer, subject, headers, exchange.client_ip),
                                 exchange) or change
        now = access.spend_now(headers, attempt.client, principal, exchange.consumer, change)
        decision = await access.spend(headers, attempt.client, principal, exchange.consumer, change) if isinstance(
            now, Pending) else now
        if principal is not None:
            attempt.headers = access.upstream_headers(attempt.headers, principal)
        if decision is not None:
            exchange.response_headers = decision.headers()
        return subject

    def _judge(self, judged: Mapping[str, Sanction], client: str, exchange: Exchange) -> LimitChange | None:
        """What the route's sanction of `client` does (raises ClientBlocked, counted here)."""
        sanction = judged.get(client)
        if sanction is None:
            return None
        assert exchange.abuse is not None and exchange.route is not None
        try:
            return judge(sanction, exchange.abuse, exchange.route)
        except ClientBlocked:
            self.recorder.abuse_action(exchange.route, "block")
            raise

    def _count_client(self, scope: Scope, exchange: Exchange) -> None:
        """The finished request in the abuse counters, as its client's (protocols.abuse.counters)."""
        status = exchange.status
        if status == 401 or status == 403:
            # A refused credential names nobody: guessed keys or tokens count for the address they came from, so
            # that a credential-stuffing client is one client with many failures, not many with one each.
            client = client_identity(exchange.consumer, exchange.subject, (), exchange.client_ip)
        else:
            client = client_identity(exchange.consumer, exchange.subject, scope["headers"], exchange.client_ip)
        self.abuse.record(exchange.route or "", client, exchange.status, exchange.bytes_in, exchange.bytes_out,
                          exchange.clean_path, None if client.startswith("ip:") else exchange.client_ip)

    async def _plugged(self, scope: Scope, receive: Receive, run: PluginRun, head: RequestHead, attempt: Attempt,
                       exchange: Exchange) -> None:
        """__call__'s steps for a route that runs plugins, with their phases in between (protocols.plugins):
        request, the JWT and rate limit, access, the body, balance (AI routing's choice of backend), upstream,
        then the exchange, whose response goes through `run` (the response and body phases)."""
        await run.request()
        subject = (await self._admit(attempt, attempt.access, scope, exchange)
                   if attempt.access is not None or attempt.judged is not None else None)
        await run.access(subject)
        if head.has_body:
            if attempt.guards is not None:
                receive = attempt.guards.limit_receive(receive)
            await _read_body(attempt, receive, head, exchange)
        if run.chain.by_phase["balance"]:
            await self._balance(run, attempt, exchange)
        attempt.headers, attempt.target = await run.upstream(attempt.headers, attempt.target)
        if attempt.shaping is not None:
            # A shaped answer gets the route's guard fields on its way out: the run sends through the guard
            # meanwhile (the gateway's own error answers have them from answer_head, as without plugins).
            plain, guard = run.inner, exchange.guard
            run.inner = plain if guard is None else guard
            try:
                await self._forward_shaped(scope, attempt, receive, run, exchange)
            finally:
                run.inner = plain
        elif attempt.spec.total_timeout <= 0:
            await forward(self.client, self.state, attempt, receive, run, exchange, self.recorder)
        else:
            await self._forward_within_total(attempt, receive, run, exchange)

    def _prepare(self, scope: Scope, send: Send, head: RequestHead, exchange: Exchange,
                 plan: TablePlan) -> Attempt | None:
        """Match the route, run its guards, and build what every attempt sends (all but the body); raises the
        gateway error that answers instead. None when the answer is a CORS preflight's (in `exchange.preflight`).
        `send` is the request's own: the route's GuardedSend, when its answers get fields, is built around it.
        """
        method = scope["method"]
        table = plan.table
        clean_path = exchange.clean_path
        host = exchange.host
        # A CORS preflight is matched with the method it asks about: routes rarely list OPTIONS.
        asked = preflight_method(method, scope["headers"]) if method == "OPTIONS" else None
        match = table.match(asked or method, host, clean_path)
        client_ip, https = exchange.client_ip, exchange.https
        route = match.route
        if route is None:
            unrouted = plan.unrouted
            exchange.guard = GuardedSend.for_request(send, unrouted, scope["headers"], https)
            unrouted.check_request(scope, client_ip)
            if match.allow:
                raise MethodNotAllowed(method, clean_path, match.allow)
            raise NoRoute(method, clean_path)
        exchange.route = route.name
        route_plan: RoutePlan = plan.routes[route.id]
        abuse = route_plan.abuse
        judged: Mapping[str, Sanction] | None = None
        if abuse is not None:
            exchange.abuse = abuse  # counted from here on, refusals included
            if abuse.enforcing or abuse.personalized_limits:
                judged = self.sanctions.table.get(route.name)
        guards = route_plan.guards
        if route_plan.broken or guards is None:
            raise RouteMisconfigured(route.name)
        docs = route_plan.api_docs
        if docs is not None and sampled(docs):
            # Before the guard is built around `send`: the sample sees the answer as the client gets it.
            send = exchange.sample = DocsSample(send, docs, route, method, clean_path,
                                                scope.get("query_string", b""), scope["headers"])
        if route_plan.touches_answers:
            exchange.guard = GuardedSend.for_request(send, guards, scope["headers"], https)
        guards.check_request(scope, client_ip)
        tls = route_plan.tls
        if tls.redirect_http and not https:
            raise HttpsRedirect(tls.redirect_status, self._https_location(scope, host))
        if asked is not None:
            preflight = guards.cors_preflight(method, scope["headers"], https)
            if preflight is not None:
                exchange.preflight = preflight
                return None
            if method not in route.methods:
                # Not a preflight this route's CORS policy answers: the OPTIONS request itself is matched.
                match = table.match(method, host, clean_path)
                if match.route is not route:
                    if match.allow:
                        raise MethodNotAllowed(method, clean_path, match.allow)
                    raise NoRoute(method, clean_path)
        if route.protocol != "http" and route.protocol != "grpc":  # gRPC calls: _call_grpc
            raise protocol_error(route.name, route.protocol)
        if tls.wants_client_certificate:  # before the route's JWT, keys and rate limit (in _admit)
            head.forward = _with_subject(head.forward, tls, client_subject(
                scope, route.name, tls.client_certificate == "required", tls.client_ca_pem, tls.client_cas))
        runtime = route_plan.runtime
        assert runtime is not None
        spec = route.spec
        shaping = route_plan.shaping
        request_rules = shaping.request if shaping is not None else None
        if request_rules is not None:
            # Header rules see the client's end-to-end fields, before X-Forwarded-*, Via and X-Request-ID.
            head.forward = request_rules.apply_headers(head.forward)

        # The first field is Host: the backend's own authority, filled in per attempt, unless the route keeps
        # the client's.
        headers = [(b"host", head.host if spec.preserve_host and head.host else b"")]
        headers += head.forward
        peer = exchange.peer
        if peer is not None:
            forwarded_for = head.forwarded_for + b", " + peer if head.forwarded_for else peer
            proto = head.forwarded_proto or _SCHEMES.get(scope["scheme"], b"http")
            forwarded_host = head.forwarded_host or head.host
        else:
            forwarded_for = client_ip.encode()
            proto = _SCHEMES.get(scope["scheme"], b"http")
            forwarded_host = head.host
        headers.append((b"x-forwarded-for", forwarded_for))
        headers.append((b"x-forwarded-proto", proto))
        if forwarded_host:
            headers.append((b"x-forwarded-host", forwarded_host))
        via = VIA_HTTP2 if scope["http_version"] == "2" else VIA
        headers.append((b"via", head.via + b", " + via if head.via else via))
        headers.append((b"x-request-id", exchange.request_id))
        # The gateway is one span of the trace: the client's trace id (or a new one) with our own parent id.
        traceparent, exchange.trace_id = traceparent_from(head.traceparent, self.decide)
        exchange.traceparent = traceparent
        headers.append((b"traceparent", traceparent))

        upstream_path = route.upstream_path(match.params, clean_path)
        query = scope.get("query_string")
        if request_rules is not None:
            # Path rules run after {param} substitution.
            upstream_path = request_rules.apply_path(upstream_path)
            query = request_rules.apply_query(query or b"")
        target = upstream_path.encode("latin-1")
        if query:
            target += b"?" + query
        attempt = Attempt(runtime, spec, _METHODS.get(method) or method.encode(), target, headers,
                          not (spec.preserve_host and head.host), b"", head.content_length, client_ip,
                          runtime.retry.max_retries if method in runtime.retryable else 0,
                          route_plan.access)
        attempt.plugins = route_plan.plugins
        attempt.guards = guards
        attempt.judged = judged
        if shaping is None:
            attempt.answer_guard = exchange.guard
        else:
            attempt.shaping = shaping
        return attempt

    def _https_location(self, scope: Scope, host: str) -> str:
        """The request's URL on the TLS listener (`host` as matched: lower-case, without port)."""
        port = self.options.https_port
        if not host:  # an HTTP/1.0 request without Host: the address it reached
            server = scope.get("server")
            host = server[0] if server else "localhost"
        authority = host if port == 443 else f"{host}:{port}"
        query = scope.get("query_string")
        target = raw_path(scope) + ("?" + query.decode("latin-1") if query else "")
        return f"https://{authority}{target}"

    def _locate(self, scope: Scope, head: RequestHead, path: str, exchange: Exchange) -> None:
        """What every later step reads from the exchange: the clean path and host key the route is matched
        with, and the client's address and whether it used https (behind a trusted proxy, from its
        X-Forwarded-For and X-Forwarded-Proto; `peer` is then that proxy's address, else None)."""
        exchange.clean_path = normalize_path(path)
        exchange.host = host_key(head.host)
        client = scope.get("client")
        client_ip = client[0] if client else ""
        https = scope["scheme"] == "https"
        if client_ip not in self.trusted:
            exchange.client_ip, exchange.https, exchange.peer = client_ip, https, None
            return
        exchange.peer = client_ip.encode()
        if head.forwarded_for:
            client_ip = client_address(client_ip, head.forwarded_for, self.trusted)
        if head.forwarded_proto:
            # The first entry is what the client used; later ones are hops between proxies.
            https = head.forwarded_proto.split(b",")[0].strip().lower() == b"https"
        exchange.client_ip, exchange.https = client_ip, https

    async def _preflight(self, send: Send, exchange: Exchange) -> None:
        """The gateway's answer to a CORS preflight the route's policy allows (complete, with an empty body)."""
        assert exchange.preflight is not None
        status, headers = exchange.preflight
        # Complete as the route's CORS policy gives it (security fields included): not sent through its guard.
        headers = answer_head(headers, exchange.request_id, None, via=False)
        exchange.status = status
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _forward_shaped(self, scope: Scope, attempt: Attempt, receive: Receive, send: Send,
                              exchange: Exchange) -> None:
        """`forward` for a route that transforms its answers, caches or compresses: the answer goes through a
        ResponseShaper, and through the route's cache when it has one."""
        shaping = attempt.shaping
        assert shaping is not None
        method = scope["method"]
        clean_path = exchange.clean_path
        shaper = ResponseShaper(send, shaping, method, clean_path, scope["headers"], exchange.request_id)
        shaper.extra_headers = exchange.response_headers  # RateLimit-* on answers from the cache too

        async def exchange_upstream() -> None:
            if attempt.spec.total_timeout <= 0:
                await forward(self.client, self.state, attempt, receive, shaper, exchange, self.recorder)
            else:
                await self._forward_within_total(attempt, receive, shaper, exchange)

        try:
            if shaping.cache is not None:
                await through_cache(self.cache, shaping.cache, shaper, exchange.route or "", method,
                                    exchange.host, clean_path, scope.get("query_string", b""),
                                    scope["headers"], exchange_upstream)
            else:
                await exchange_upstream()
        except GatewayError:
            if not shaper.started:
                exchange.answered = False  # a held head (a JSON body being edited) never went out
            raise
        finally:
            if shaper.started:
                exchange.status = shaper.status
                exchange.bytes_out = shaper.bytes_out
        exchange.answered = shaper.started

    async def _forward_within_total(self, attempt: Attempt, receive: Receive, send: Send,
                                    exchange: Exchange) -> None:
        """`forward` under the route's total timeout: every attempt, backoff and the body, cut off together."""
        total = attempt.spec.total_timeout
        deadline = attempt.deadline = asyncio.timeout(total)
        try:
            async with deadline:
                await forward(self.client, self.state, attempt, receive, send, exchange, self.recorder)
        except TimeoutError:
            if not deadline.expired():
                raise
            backend = exchange.backend or attempt.runtime.name
            self.recorder.upstream_error(backend, "timeout")
            raise UpstreamTotalTimeout(backend, total) from None

    async def _call_grpc(self, scope: Scope, receive: Receive, send: Send, attempt: Attempt,
                         exchange: Exchange) -> None:
        """A gRPC route's call (protocols.grpc): the route's JWT and rate limit, then the call, its messages
        streamed both ways within the route's body limit."""
        timeout_field = check_call(scope, exchange.route or "")
        if attempt.access is not None or attempt.judged is not None:
            await self._admit(attempt, attempt.access, scope, exchange)
        if attempt.guards is not None:
            receive = attempt.guards.limit_receive(receive)
        await forward_call(self.dataplane.grpc, self.state, attempt, receive, send, exchange, self.recorder,
                           timeout_field)

    async def _fail(self, scope: Scope, send: Send, exchange: Exchange, exc: GatewayError) -> None:
        exchange.error = exc.type
        if exchange.answered:
            # A second head is impossible: return without finishing the body, and the server closes the
            # connection, so the client sees a truncated response rather than a complete-looking one.
            return
        if is_grpc_request(scope):
            await answer_error(send, exchange, exc)  # HTTP 200, its gRPC status in the trailers
            return
        request_id = exchange.request_id
        status, headers, payload = exc.response(request_id.decode("latin-1"))
        headers = answer_head(headers, request_id, exchange.response_headers, exchange.guard, via=False)
        exchange.status = status
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def aclose(self) -> None:
        """Shutdown: the data plane's (the DNS listeners, idle upstream, rate-limit and cache store connections,
        pending access-log lines)."""
        await self.dataplane.aclose()


def _with_subject(forward: list[tuple[bytes, bytes]], tls: TlsPolicy,
                  subject: str | None) -> list[tuple[bytes, bytes]]:
    """The client's fields without its own copy of the route's subject header, and with the verified subject."""
    if not tls.subject_header:
        return forward
    name = tls.subject_header.encode("latin-1")
    kept = [field for field in forward if field[0] != name]
    if subject is not None:
        kept.append((name, subject.encode()))
    return kept


async def _read_body(attempt: Attempt, receive: Receive, head: RequestHead, exchange: Exchange) -> None:
    """Give the attempt its request body: whole when it arrived in one piece or is small enough to keep for a
    retry (Content-Length up to MAX_REPLAY_BODY), streamed otherwise, and then never retried. A JSON body the
    route's request rules edit is read whole within their cap, and sent as it came when larger."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected("the client went away before sending its body")
    first: bytes = message.get("body", b"")
    exchange.bytes_in = len(first)
    attempt.body_head = first
    rules = attempt.shaping.request if attempt.shaping is not None else None
    if rules is not None and rules.body_applies(head.forward, head.content_length):
        data, complete = await read_capped(receive, first, message.get("more_body", False), rules.max_body_bytes)
        exchange.bytes_in = len(data)
        if complete:
            attempt.body = edit_body(rules, data, True)
            attempt.content_length = len(attempt.body)
            if attempt.content_length > MAX_REPLAY_BODY:
                attempt.retries = 0
        else:
            # Over the cap: what was read goes first, the rest streams after it, all untouched.
            exchange.body_read = False
            attempt.body = streamed_body(receive, data, exchange)
            attempt.retries = 0
        if exchange.sample is not None:
            attempt.body = exchange.sample.take_request_body(attempt.body)
        return
    if not message.get("more_body", False):
        body: bytes | AsyncIterator[bytes] = first
    elif attempt.retries and head.content_length is not None and head.content_length <= MAX_REPLAY_BODY:
        body = await buffered_body(receive, first, exchange)
    else:
        exchange.body_read = False
        body = streamed_body(receive, first, exchange)
    attempt.body = body
    if not isinstance(body, bytes) or len(body) > MAX_REPLAY_BODY:
        attempt.retries = 0
    if exchange.sample is not None:
        attempt.body = exchange.sample.take_request_body(body)
