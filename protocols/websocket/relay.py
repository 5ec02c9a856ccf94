"""One open tunnel: messages relayed both ways with backpressure, limits enforced, and the close passed across.

Backpressure needs no queue of ours: each direction is one loop that awaits the sending side before it reads
the next message. uvicorn stops reading the client's socket while a message waits for our `receive()`, and
its `send()` waits while the client's socket buffer is full; the websockets client stops reading the backend's
socket once `UPSTREAM_MAX_QUEUE` frames wait for `recv()`, and its `send()` waits for the backend to drain.
So a slow reader on either side stalls the fast writer on the other, and memory stays at a few buffers.

Pings are not relayed (ASGI has no event for them): uvicorn answers the client's pings and pings it every
20 s, the websockets client does the same towards the backend, so both legs stay alive and a dead peer is
noticed on its own leg; the tunnel then closes the other leg.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from protocols.websocket.config import WebSocketPolicy
from protocols.websocket.metrics import RouteCounters

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NO_STATUS = int(CloseCode.NO_STATUS_RCVD)  # 1005: a close frame without a code (never sent as a code)
GOING_AWAY = int(CloseCode.GOING_AWAY)  # 1001
TOO_BIG = int(CloseCode.MESSAGE_TOO_BIG)  # 1009
BAD_GATEWAY = int(CloseCode.BAD_GATEWAY)  # 1014: the backend's leg broke without a close frame
_LOST = frozenset({int(CloseCode.ABNORMAL_CLOSURE), int(CloseCode.TLS_HANDSHAKE)})  # 1006, 1015: no frame came
UPSTREAM_MAX_QUEUE = 4  # frames the websockets client buffers from the backend before it stops reading


@dataclass(frozen=True, slots=True)
class Ending:
    """How a tunnel ends: the close frame (code, reason) each side still needs, None for a side already gone.
    An upstream code of None sends a close frame without a code (the client sent one without a code)."""

    cause: str
    to_client: tuple[int, str] | None
    to_upstream: tuple[int | None, str] | None


def gateway_ending(cause: str, code: int, reason: str) -> Ending:
    """The gateway ends the tunnel itself (idle, route removed, shutdown): both sides get the same frame."""
    return Ending(cause, (code, reason), (code, reason))


def _text_size(text: str) -> int:
    """UTF-8 length; ASCII text (the common case) is measured without encoding it."""
    return len(text) if text.isascii() else len(text.encode())


class Tunnel:
    """Relays one accepted client connection (ASGI) and one open backend connection (websockets) until either
    side closes, a limit is hit, or `shut` is called (route removed, shutdown)."""

    def __init__(self, route_id: int, receive: Receive, send: Send, upstream: ClientConnection,
                 policy: WebSocketPolicy, counters: RouteCounters,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.route_id = route_id
        self.table: object = None  # the route table the route was last seen in (kept by the registry)
        self._receive = receive
        self._send = send
        self.upstream = upstream
        self.policy = policy
        self.counters = counters
        self._clock = clock
        self.last_activity = clock()
        self.bytes_from_client = 0  # this tunnel's own message bytes, for its access-log line
        self.bytes_to_client = 0
        self._shut: asyncio.Future[Ending] = asyncio.get_running_loop().create_future()

    def shut(self, code: int, reason: str, cause: str = "gateway") -> None:
        """Ask the tunnel to close both sides with this code and reason (idempotent; first call wins)."""
        if not self._shut.done():
            self._shut.set_result(gateway_ending(cause, code, reason))

    async def run(self) -> Ending:
        """Relay until the end, close whichever side still needs it, and say how it ended."""
        inbound = asyncio.ensure_future(self._client_to_upstream())
        outbound = asyncio.ensure_future(self._upstream_to_client())
        waiting = {inbound, outbound, self._shut}
        ending: Ending | None = None
        try:
            while ending is None:
                timeout = self._idle_left()
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if self._shut in done:
                    ending = self._shut.result()
                elif inbound in done:
                    ending = inbound.result()
                elif outbound in done:
                    ending = outbound.result()
                elif self._idle_left() == 0.0:
                    ending = gateway_ending("idle", GOING_AWAY, "idle timeout")
        finally:
            for task in (inbound, outbound):
                task.cancel()
            await asyncio.gather(inbound, outbound, return_exceptions=True)
        await self._close(ending)
        return ending

    def _idle_left(self) -> float | None:
        idle = self.policy.idle_timeout
        if not idle:
            return None
        return max(0.0, self.last_activity + idle - self._clock())

    async def _client_to_upstream(self) -> Ending:
        receive, upstream, counters = self._receive, self.upstream, self.counters
        limit = self.policy.max_message_bytes
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                data: str | bytes
                if text is not None:
                    data = text
                    size = _text_size(text)
                else:
                    data = message.get("bytes") or b""
                    size = len(data)
                if size > limit:
                    return Ending("client_too_big", (TOO_BIG, "message too big"),
                                  (GOING_AWAY, "client sent a message over the size limit"))
                counters.messages_from_client += 1
                counters.bytes_from_client += size
                self.bytes_from_client += size
                self.last_activity = self._clock()
                try:
                    await upstream.send(data)
                except ConnectionClosed as exc:
                    return _upstream_closed(exc)
            elif kind == "websocket.disconnect":
                code = message.get("code", NO_STATUS)
                if code in _LOST:
                    return Ending("client", None, (GOING_AWAY, "client connection lost"))
                return Ending("client", None, (None if code == NO_STATUS else code, message.get("reason") or ""))

    async def _upstream_to_client(self) -> Ending:
        send, upstream, counters = self._send, self.upstream, self.counters
        while True:
            try:
                data = await upstream.recv()
            except ConnectionClosed as exc:
                return _upstream_closed(exc)
            if isinstance(data, str):
                size = _text_size(data)
                message: Message = {"type": "websocket.send", "text": data}
            else:
                size = len(data)
                message = {"type": "websocket.send", "bytes": data}
            counters.messages_to_client += 1
            counters.bytes_to_client += size
            self.bytes_to_client += size
            self.last_activity = self._clock()
            try:
                await send(message)
            except OSError:  # uvicorn's ClientDisconnected: the disconnect event ends the other loop
                return Ending("client", None, (GOING_AWAY, "client connection lost"))

    async def _close(self, ending: Ending) -> None:
        if ending.to_client is not None:
            code, reason = ending.to_client
            try:
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
            except (OSError, RuntimeError):
                pass  # the client is already gone: nobody left to tell
        if ending.to_upstream is not None:
            upstream_code, upstream_reason = ending.to_upstream
            # A close frame without a code needs code=None; websockets' close() passes it through.
            await self.upstream.close(upstream_code, upstream_reason)  # type: ignore[arg-type]
        else:
            await self.upstream.close()


def _upstream_closed(exc: ConnectionClosed) -> Ending:
    """What the client should get when the backend's leg ended: the backend's own close frame, the one our
    client sent (message too big, keepalive timeout), or 1014 when the leg broke without either."""
    received, sent = exc.rcvd, exc.sent
    if received is not None and (sent is None or exc.rcvd_then_sent):
        code = received.code
        return Ending("upstream", (1000 if code == NO_STATUS else code, received.reason), None)
    if sent is not None:
        if sent.code == TOO_BIG:
            return Ending("upstream_too_big", (TOO_BIG, "backend sent a message over the size limit"), None)
        return Ending("upstream", (sent.code, sent.reason), None)
    return Ending("upstream_lost", (BAD_GATEWAY, "backend connection lost"), None)
