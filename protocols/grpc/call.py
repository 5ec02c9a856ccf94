"""One gRPC call through the gateway: a balanced backend over HTTP/2, the request messages streamed to it, its
response messages and trailers streamed back; a failure after the response head ends the call in its trailers.

The ASGI rules this relies on (the HTTP/2 listener's `http.response.trailers` extension): `http.response.start`
with `"trailers": True`, then body messages, the last with `more_body` False, then one `http.response.trailers`.
Before the start, a failure is raised as the gateway error it is, which ProxyApp answers with `answer_error`.

A status alone (the gateway's errors, a backend's Trailers-Only answer) goes out as a head and trailers, never as
a head with an empty body: an ASGI server turns that into HEADERS and an empty DATA frame with END_STREAM, which
grpcio's client refuses ("Data frame with END_STREAM flag received", UNKNOWN), and ASGI has no way to end a
stream on its head. A connect failure may move the call to another backend (nothing of it was sent yet); once a
stream is open the call is never retried.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocols.errors import (
    ClientDisconnected,
    GatewayError,
    GrpcContentTypeRequired,
    Http2Required,
    UpstreamError,
    UpstreamTimeout,
)
from protocols.grpc.deadline import Deadline, call_deadline, format_timeout
from protocols.grpc.status import code_of, code_of_http_status, status_fields
from protocols.http.forwarding import may_retry
from protocols.http.headers import answer_head
from protocols.upstream import authority

if TYPE_CHECKING:
    from protocols.balancing import BackendState
    from protocols.balancing.registry import Lease
    from protocols.http.forwarding import Attempt, Exchange
    from protocols.recorder import Recorder
    from protocols.table import LiveTable
    from protocols.upstream.http2 import Headers, Http2Stream
    from protocols.upstream.http2_client import Http2Client

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRAILERS = "http.response.trailers"
# Request fields the call replaces: its deadline is re-stated for the time left.
_REPLACED_REQUEST = frozenset({b"grpc-timeout", b"te"})
# Response fields the gateway's own replace (the listener sends its Date and Server; one X-Request-ID).
_REPLACED_RESPONSE = frozenset({b"date", b"server", b"x-request-id"})


def is_grpc_type(content_type: bytes) -> bool:
    """application/grpc, with or without a +format or parameters (never application/grpc-web)."""
    value = content_type.lower()
    return value == b"application/grpc" or value.startswith((b"application/grpc+", b"application/grpc;"))


def is_grpc_request(scope: dict[str, Any]) -> bool:
    """An HTTP/2 request with a gRPC content type: its errors are answered in gRPC's terms."""
    if scope.get("http_version") != "2":
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return is_grpc_type(value)
    return False


def check_call(scope: dict[str, Any], route_name: str) -> bytes | None:
    """Refuse what a gRPC route cannot serve: HTTP/1.1 or a listener without trailers (426), a request without a
    gRPC content type (415). Returns the request's grpc-timeout field (None when it has none)."""
    if scope.get("http_version") != "2" or TRAILERS not in scope.get("extensions", {}):
        raise Http2Required(route_name, scope["scheme"] == "https")
    timeout = None
    grpc = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            grpc = is_grpc_type(value)
        elif name == b"grpc-timeout":
            timeout = value
    if not grpc:
        raise GrpcContentTypeRequired(route_name)
    return timeout


def grpc_status_in(fields: Headers) -> int | None:
    for name, value in fields:
        if name == b"grpc-status":
            return int(value) if value.isdigit() else None
    return None


async def answer_error(send: Send, exchange: Exchange, error: GatewayError) -> None:
    """The gateway's own error in gRPC's terms: HTTP 200, application/grpc, no message, then trailers with its
    grpc-status and grpc-message (percent-encoded)."""
    code = code_of(error)
    headers = answer_head([(b"content-type", b"application/grpc")], exchange.request_id, exchange.response_headers,
                          exchange.guard, via=False)
    exchange.status = 200
    exchange.answered = True
    await send({"type": "http.response.start", "status": 200, "headers": headers, "trailers": True})
    await end_call(send, exchange, status_fields(code, error.message))


async def end_call(send: Send, exchange: Exchange, trailers: Headers) -> None:
    """The end of a call whose head was sent (with `"trailers": True`): the last body message, then trailers."""
    exchange.grpc_status = grpc_status_in(trailers)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": TRAILERS, "headers": trailers, "more_trailers": False})


class DeadlineExceeded(UpstreamTimeout):
    """504 (DEADLINE_EXCEEDED): the call outlasted its deadline (the client's grpc-timeout or the route's total
    timeout); the backend's stream is cancelled."""

    def __init__(self, backend: str, seconds: float) -> None:
        GatewayError.__init__(self, 504, "upstream_timeout",
                              f"The call to backend {backend} passed its deadline of {seconds:g} s.")


async def forward_call(client: Http2Client, state: LiveTable, attempt: Attempt, receive: Receive, send: Send,
                       exchange: Exchange, metrics: Recorder, timeout_field: bytes | None) -> None:
    """Proxy one gRPC call (see the module docstring); raises a GatewayError only before the response head,
    ClientDisconnected when the client goes away. `timeout_field` is the client's grpc-timeout (check_call's)."""
    # Until a stream is open nothing of the call was sent: the route's retries may move it to another backend.
    attempt.retries = attempt.runtime.retry.max_retries
    await GrpcCall(client, state, attempt, receive, send, exchange, metrics,
                   call_deadline(timeout_field, attempt.spec.total_timeout)).run()


class GrpcCall:
    """The state of one call: its backend lease, its stream, the task that uploads the client's messages."""

    __slots__ = ("client", "state", "attempt", "receive", "send", "exchange", "metrics", "deadline", "loop",
                 "lease", "stream", "label", "sent", "head_timer", "request_sent", "upload", "failed")

    def __init__(self, client: Http2Client, state: LiveTable, attempt: Attempt, receive: Receive, send: Send,
                 exchange: Exchange, metrics: Recorder, deadline: Deadline) -> None:
        self.client = client
        self.state = state
        self.attempt = attempt
        self.receive = receive
        self.send = send
        self.exchange = exchange
        self.metrics = metrics
        self.deadline = deadline
        self.loop = asyncio.get_running_loop()
        self.lease: Lease | None = None
        self.stream: Http2Stream | None = None
        self.label = ""
        self.sent = 0.0
        self.head_timer: asyncio.Timeout | None = None  # set while the response head is awaited
        self.request_sent = False
        self.upload: asyncio.Task[None] | None = None
        self.failed: bool | None = False  # what the call says about the backend (its breaker's outcome)

    async def run(self) -> None:
        seconds = self.deadline.seconds
        timer = asyncio.timeout_at(None if seconds is None else self.loop.time() + seconds)
        try:
            try:
                async with timer:
                    await self._open(timer)
                    await self._relay()
            except TimeoutError:
                if not timer.expired():
                    raise
                assert seconds is not None
                self.failed = None if self.deadline.by_client else True
                raise DeadlineExceeded(self.label or self.attempt.runtime.name, seconds) from None
        except GatewayError as exc:
            if isinstance(exc, UpstreamError) and not isinstance(exc, DeadlineExceeded):
                self.failed = True
            if self.label and isinstance(exc, UpstreamError):
                self.metrics.upstream_error(self.label, exc.type)
            if not self.exchange.answered:
                raise
            self.exchange.error = exc.type
            await self._end(status_fields(code_of(exc), exc.message))
        except ClientDisconnected:
            self.failed = None
            raise
        finally:
            self._close()

    async def _open(self, timer: asyncio.Timeout) -> None:
        """A stream on a balanced backend (others tried after a connect failure, as the route's retry policy
        allows) and the task that uploads the request messages."""
        attempt, exchange = self.attempt, self.exchange
        runtime = attempt.runtime
        clock = runtime.board.clock
        host = attempt.headers[0][1]
        headers = [item for item in attempt.headers[1:] if item[0] not in _REPLACED_REQUEST]
        headers.append((b"te", b"trailers"))
        when = timer.when()
        if when is not None:
            headers.append((b"grpc-timeout", format_timeout(max(0.0, when - self.loop.time()))))
        tried: list[BackendState] = []
        while True:
            health = self.state.health
            lease = runtime.pick(attempt.client, health, tried)
            backend = lease[0].spec
            self.label = exchange.backend = authority(backend.host, backend.port)
            try:
                stream = await self.client.open(backend, b"POST", attempt.target, headers,
                                                connect_timeout=attempt.spec.connect_timeout,
                                                authority=b"" if attempt.set_host else host)
            except UpstreamError as exc:
                self.metrics.upstream_error(self.label, exc.type)
                runtime.release(lease, True, clock())
                tried.append(lease[0])
                if runtime.retry.on_connection_error and may_retry(attempt, health, tried):
                    continue
                self.label = ""  # counted here already
                raise
            except BaseException:
                runtime.release(lease, None, clock())
                raise
            self.lease, self.stream, self.sent = lease, stream, clock()
            self.upload = self.loop.create_task(self._upload(stream))
            return

    async def _relay(self) -> None:
        """The backend's head, messages and trailers, as they come."""
        stream, exchange = self.stream, self.exchange
        assert stream is not None
        read_timeout = self.attempt.spec.read_timeout
        head_timer = asyncio.timeout_at(self.loop.time() + read_timeout if self.request_sent else None)
        try:
            async with head_timer:
                self.head_timer = head_timer
                try:
                    await stream.response()
                finally:
                    self.head_timer = None
        except TimeoutError:
            if not head_timer.expired():
                raise
            raise UpstreamTimeout(self.label, read_timeout, "the response head") from None
        exchange.upstream_s = self.attempt.runtime.board.clock() - self.sent
        status = exchange.status = stream.status
        self.failed = status in self.attempt.runtime.breaker.failure_statuses
        headers = [item for item in stream.headers if item[0] not in _REPLACED_RESPONSE]
        headers = answer_head(headers, exchange.request_id, exchange.response_headers, self.attempt.answer_guard)
        send = self.send
        if stream.ended and grpc_status_in(stream.headers) is not None:
            # Trailers-Only: the content type stays in the head, the status and every other field (the call's
            # trailing metadata) go in the trailers (see the module docstring).
            exchange.answered = True
            trailing = [item for item in headers if item[0] != b"content-type" and item in stream.headers]
            headers = [item for item in headers if item not in trailing]
            await send({"type": "http.response.start", "status": status, "headers": headers, "trailers": True})
            await end_call(send, exchange, trailing)
            return
        exchange.answered = True
        await send({"type": "http.response.start", "status": status, "headers": headers, "trailers": True})
        while chunk := await stream.read():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            exchange.bytes_out += len(chunk)
        trailers = stream.trailers
        if grpc_status_in(trailers) is None:
            trailers = [*trailers, *status_fields(code_of_http_status(status),
                                                  "the backend ended the call without a grpc-status")]
        await self._end(trailers)

    async def _upload(self, stream: Http2Stream) -> None:
        """The client's messages to the backend as they arrive (the stream's windows pace the client), then a
        watch for the client leaving; a failure here ends the call through the stream."""
        receive, exchange = self.receive, self.exchange
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected("the client went away during the call")
                body = message.get("body", b"")
                more = message.get("more_body", False)
                exchange.bytes_in += len(body)
                if body or not more:
                    await stream.send(body, end=not more)
                if not more:
                    break
            # The backend has the whole request: from now on it has the route's read timeout to answer.
            self.request_sent = True
            timer = self.head_timer
            if timer is not None:
                timer.reschedule(self.loop.time() + self.attempt.spec.read_timeout)
            while (await receive())["type"] != "http.disconnect":
                pass
            raise ClientDisconnected("the client went away during the call")
        except (GatewayError, ClientDisconnected) as exc:
            stream.fail(exc)
            if not isinstance(exc, UpstreamError):
                stream.cancel()

    async def _end(self, trailers: Headers) -> None:
        await end_call(self.send, self.exchange, trailers)

    def _close(self) -> None:
        if self.upload is not None:
            self.upload.cancel()
        if self.stream is not None:
            self.stream.finish()
        if self.lease is not None:
            runtime = self.attempt.runtime
            runtime.release(self.lease, self.failed, runtime.board.clock())
