"""One request's trip upstream: attempts on balanced backends, retries within policy and budget, the streamed answer.

The ASGI rule this relies on: until `http.response.start` is sent, the exchange can still be redone on another
backend; after it, an upstream failure can only cut the response short. So every retry decision is taken
before the first byte goes to the client.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from protocols.balancing import BackendState, RouteRuntime
from protocols.errors import ClientDisconnected, NoHealthyBackend, UpstreamError
from protocols.http.headers import answer_head
from protocols.recorder import Recorder, recorder
from protocols.retries import backoff, retry_after
from protocols.table import LiveTable, RouteSpec
from protocols.upstream import UpstreamClient, UpstreamResponse

if TYPE_CHECKING:
    from protocols.abuse.config import AbusePolicy
    from protocols.abuse.sanctions import Sanction
    from protocols.apidocs.sampler import DocsSample
    from protocols.guards import Guards
    from protocols.http.access import RouteAccess
    from protocols.http.plugins import GuardedSend
    from protocols.plugins import PluginChain
    from protocols.shaping import RouteShaping

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class Exchange:
    """One request's context, made once: what every step reads (set by ProxyApp once the head is read: the clean
    path and host key it is matched with, the client's address, whether it used https, the trusted proxy's
    address), and what the request did, for error handling, the access-log line and the metrics recorder."""

    __slots__ = ("request_id", "route", "backend", "status", "answered", "bytes_in", "bytes_out", "error",
                 "body_read", "upstream_s", "trace_id", "traceparent", "response_headers", "guard", "preflight",
                 "clean_path", "host", "client_ip", "https", "peer", "ai", "consumer", "grpc_status", "subject",
                 "abuse", "sample")

    # Set together, before any of them is read (not in __init__: a request refused earlier never needs them).
    clean_path: str
    host: str
    client_ip: str
    https: bool
    peer: bytes | None  # the trusted proxy the request came through, else None

    def __init__(self, request_id: bytes) -> None:
        self.request_id = request_id
        self.route: str | None = None
        self.backend: str | None = None
        self.status = 0
        self.answered = False  # the response head went to the client: errors can only cut the response short
        self.bytes_in = 0
        self.bytes_out = 0
        self.error: str | None = None
        self.body_read = True  # the request body has been read to the end (or there is none)
        self.upstream_s: float | None = None  # until the backend's response head, when one came
        self.trace_id: str | None = None  # protocols.tracing's, once the request reached a route
        self.traceparent: bytes = b""  # the value sent upstream (carries the gateway's span id)
        self.response_headers: Headers | None = None  # added to the answer (RateLimit-* of a limited route)
        self.guard: GuardedSend | None = None  # the route's CORS and security fields, for every answer
        self.preflight: tuple[int, Headers] | None = None  # a CORS preflight's answer, sent by the gateway
        # What chose the backend in the plugins' balance phase (AI routing's strategy) and where its answer came
        # from, for the access log's ai_strategy and ai_source.
        self.ai: tuple[str, str] | None = None
        # The consumer an API key or a JWT subject resolved to (protocols.auth.consumers), for the recorder's
        # per-consumer figures and the access log; set before the rate limit, so a 429 is the consumer's too.
        self.consumer: str | None = None
        self.grpc_status: int | None = None  # a gRPC call's status, as its client got it (protocols.grpc)
        self.subject: str | None = None  # the JWT's subject, once verified (the abuse counters' client)
        # The route's `abuse` block, when it has one: the request is counted per client (protocols.abuse).
        self.abuse: AbusePolicy | None = None
        # The route's api_docs sample of this exchange, when it was drawn (protocols.apidocs.sampler).
        self.sample: DocsSample | None = None


class Attempt:
    """What every attempt of one request sends, and how many retries it may take."""

    __slots__ = ("runtime", "spec", "method", "target", "headers", "set_host", "body", "content_length", "client",
                 "retries", "deadline", "access", "guards", "shaping", "answer_guard", "body_head", "preferred",
                 "served", "plugins", "judged")

    def __init__(self, runtime: RouteRuntime, spec: RouteSpec, method: bytes, target: bytes, headers: Headers,
                 set_host: bool, body: bytes | AsyncIterator[bytes], content_length: int | None, client: str,
                 retries: int, access: RouteAccess | None = None) -> None:
        self.runtime = runtime
        self.spec = spec
        self.method = method
        self.target = target
        self.headers = headers  # headers[0] is Host, set per backend when `set_host`
        self.set_host = set_host
        self.body = body
        self.content_length = content_length
        self.client = client  # the address ip_hash hashes
        self.retries = retries  # 0 when the method or the body rules retries out
        self.deadline: asyncio.Timeout | None = None  # the route's total timeout, when it has one
        self.access = access  # the route's JWT and rate limit, None when it has neither
        self.guards: Guards | None = None  # the route's request guards (body limit)
        self.shaping: RouteShaping | None = None  # transformations, cache, compression; None: none of them
        # The route's CORS and security fields, added by `respond` (None for a shaped answer: its send adds them).
        self.answer_guard: GuardedSend | None = None
        self.body_head = b""  # the body's first chunk as the client sent it (what `balance` reads of a long body)
        self.preferred: int | None = None  # the balance phase's choice for the first attempt (a backend position)
        self.served: BackendState | None = None  # the backend whose response head came last
        self.plugins: PluginChain | None = None  # the route's plugins, when it runs any
        # The route's sanctions in force, when it applies them and has some (protocols.abuse.sanctions).
        self.judged: Mapping[str, Sanction] | None = None


async def forward(client: UpstreamClient, state: LiveTable, attempt: Attempt, receive: Receive, send: Send,
                  exchange: Exchange, metrics: Recorder = recorder) -> None:
    """Send the request to a backend and stream its answer back, trying again (other backends first, after a
    jittered backoff, within the retry budget) while nothing has reached the client and the route allows.

    Every failed attempt is reported to `metrics` (`upstream_error`); `exchange.upstream_s` is the last
    attempt's time until the response head."""
    runtime = attempt.runtime
    retry = runtime.retry
    spec = attempt.spec
    clock = runtime.board.clock
    tried: list[BackendState] = []
    last_error: UpstreamError | None = None
    while True:
        health = state.health  # swapped as a whole by the control plane: read it afresh for every pick
        try:
            lease = runtime.pick(attempt.client, health, tried, attempt.preferred)
        except NoHealthyBackend:
            if last_error is None:
                raise
            raise last_error from None  # what the client would have had without the retry
        backend = lease[0]
        pool = client.pool(backend.spec)
        exchange.backend = pool.label
        headers = attempt.headers
        if attempt.set_host:
            headers[0] = (b"host", pool.host_header)
        sent = clock()
        try:
            response = await client.request(
                pool, attempt.method, attempt.target, headers, attempt.body, attempt.content_length,
                connect_timeout=spec.connect_timeout, read_timeout=spec.read_timeout,
            )
        except UpstreamError as exc:
            metrics.upstream_error(pool.label, exc.type)
            runtime.release(lease, True, clock())
            tried.append(backend)
            if retry.on_connection_error and may_retry(attempt, health, tried):
                last_error = exc
                await _pause(backoff(retry, len(tried)))
                continue
            raise
        except BaseException as exc:
            runtime.release(lease, _outcome(exc, attempt.deadline), clock())
            raise
        headed = clock()
        exchange.upstream_s = headed - sent
        attempt.served = backend
        failed = response.status in runtime.breaker.failure_statuses
        if response.status in retry.on_status and attempt.retries > len(tried):
            wait = retry_after(response.headers)
            # A Retry-After beyond our longest backoff means "not now": the client gets the answer as is.
            if (wait is None or wait <= retry.max_backoff) and may_retry(attempt, health, [*tried, backend]):
                _discard(response)
                runtime.release(lease, failed, headed)
                tried.append(backend)
                last_error = None
                await _pause(max(backoff(retry, len(tried)), wait or 0.0))
                continue
        try:
            await respond(response, receive, send, exchange, attempt.answer_guard)
        except BaseException as exc:
            if isinstance(exc, UpstreamError):
                metrics.upstream_error(pool.label, exc.type)
            runtime.release(lease, _outcome(exc, attempt.deadline), clock())
            raise
        runtime.release(lease, failed, headed)
        return


def may_retry(attempt: Attempt, health: dict[int, bool], tried: list[BackendState]) -> bool:
    """Whether one more attempt is allowed after `tried`: retries left, a backend to try, and budget left."""
    if len(tried) > attempt.retries:
        return False
    runtime = attempt.runtime
    if not runtime.has_usable(health, tried):
        return False
    return runtime.budget.withdraw(runtime.board.clock())


async def respond(response: UpstreamResponse, receive: Receive, send: Send, exchange: Exchange,
                  guard: GuardedSend | None = None) -> None:
    """Relay the backend's response to the client, streaming the body with backpressure; `guard` adds the
    route's CORS and security fields to the head."""
    status = exchange.status = response.status
    headers = answer_head(response.headers, exchange.request_id, exchange.response_headers, guard)
    if response.complete:
        # The common case: the whole response arrived with its head. The connection is back in the pool
        # before the client is even answered.
        payload = response.body()
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        exchange.bytes_out = len(payload)
        return
    exchange.answered = True
    await send({"type": "http.response.start", "status": status, "headers": headers})
    # uvicorn's send() goes quiet once the client has gone, so only receive() can tell: watch it while
    # streaming and cut the backend off the moment the client leaves.
    watcher = asyncio.get_running_loop().create_task(_client_gone(receive)) if exchange.body_read else None
    if watcher is not None:
        watcher.add_done_callback(lambda task: _cut_off(task, response))
    try:
        async for chunk in response:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            exchange.bytes_out += len(chunk)
    finally:
        if watcher is not None:
            watcher.cancel()
        response.close()
    await send({"type": "http.response.body", "body": b""})


async def buffered_body(receive: Receive, first: bytes, exchange: Exchange) -> bytes:
    """The whole (small) request body, read before the first attempt so that a retry can send it again."""
    parts = [first]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away during the upload")
        chunk = message.get("body", b"")
        exchange.bytes_in += len(chunk)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def streamed_body(receive: Receive, first: bytes, exchange: Exchange) -> AsyncIterator[bytes]:
    """The request body as it arrives from the server, which stops reading the socket until we ask again."""
    if first:
        yield first
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client went away during the upload")
        chunk = message.get("body", b"")
        exchange.bytes_in += len(chunk)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            exchange.body_read = True
            return


def _outcome(exc: BaseException, deadline: asyncio.Timeout | None) -> bool | None:
    """What an exception ending an attempt says about the backend: failed (True) or nothing (None)."""
    if isinstance(exc, UpstreamError):
        return True
    if isinstance(exc, asyncio.CancelledError) and deadline is not None and deadline.expired():
        return True  # the route's total timeout ran out on this backend
    return None


def _discard(response: UpstreamResponse) -> None:
    """Drop a response that is retried instead of forwarded (its connection is kept when it can be)."""
    if response.complete:
        response.body()
    else:
        response.close()


async def _pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _cut_off(watcher: asyncio.Task[ClientDisconnected], response: UpstreamResponse) -> None:
    if not watcher.cancelled():
        response.cancel(watcher.exception() or watcher.result())


async def _client_gone(receive: Receive) -> ClientDisconnected:
    """Returns once the ASGI server reports the client's disconnection."""
    while (await receive())["type"] != "http.disconnect":
        pass
    return ClientDisconnected("the client went away during the download")
