"""RespClient: the rate limiter's Redis client, RESP2 on one pipelined connection, Lua scripts by SHA.

A decision is one EVALSHA; what redis-py's asyncio client spends around it (pool checkout, command packing,
reply parsing, a timeout per call) was most of a decision's CPU in the gateway's loop. Here:

- Pipelining: every call appends its command to one buffer and its future to a FIFO; the buffer is written
  once per loop turn, and `data_received` parses the replies and resolves the futures in order. Fifty
  concurrent decisions cost one write and a read or two, not fifty round trips.
- Timeout: one timer per connection watches the oldest unanswered command (FIFO: nothing after it can be
  answered first). When it is `timeout_s` old the connection is dropped and every pending call fails with
  RedisUnavailable: a hung or half-open connection is never reused.
- Connection: opened on first use in the running loop (AUTH and SELECT from the URL), shared by all callers;
  lost -> every pending call fails with RedisUnavailable, and the next call opens a new one. The client has
  no backoff of its own: its user (RedisStore) leaves Redis alone for a while after a failure.
- URLs: redis://[[user]:password@]host[:port][/db], rediss://... (TLS, verified against the system's CAs or
  `?ssl_ca_certs=file`; `?ssl_cert_reqs=none` turns verification off), unix:///path?db=N&password=...
  Any other scheme is refused when the client is made (at start-up), with a ValueError saying so.
"""
from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from protocols.redis_outage import redacted

# A Redis reply: int, bytes (bulk or simple string), None (nil), or a list of replies (error replies inside
# an array stay ReplyError values; a top-level one is raised).
Reply = Any

# Timers may fire this much before their deadline (uvloop rounds to milliseconds).
_TIMER_SLACK_S = 0.002
# The reply of every rate-limit script: an array of four integers, read by one match instead of five parses.
_FOUR_INTEGERS = re.compile(rb"\*4\r\n:(-?\d+)\r\n:(-?\d+)\r\n:(-?\d+)\r\n:(-?\d+)\r\n")


class ReplyError(Exception):
    """An error reply from Redis, e.g. `NOSCRIPT No matching script`; `code` is its first word."""

    @property
    def code(self) -> str:
        return str(self).split(" ", 1)[0]


class RedisUnavailable(Exception):
    """No reply is coming: connecting failed, the connection was lost, or Redis stayed silent for timeout_s."""


class Script:
    """A Lua script and the SHA1 EVALSHA names it by."""

    __slots__ = ("source", "sha", "evalsha_prefixes")

    def __init__(self, source: str) -> None:
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source).hexdigest().encode()
        # The constant start of `EVALSHA sha numkeys`, encoded once for 0 to 3 keys (a script has few).
        self.evalsha_prefixes = [_bulks((b"EVALSHA", self.sha, n)) for n in range(4)]

    def evalsha_command(self, keys: tuple[Any, ...], args: tuple[Any, ...]) -> bytes:
        """`EVALSHA sha numkeys keys... args...`, encoded."""
        prefixes = self.evalsha_prefixes
        if len(keys) < len(prefixes):
            return b"*%d\r\n%s%s" % (len(keys) + len(args) + 3, prefixes[len(keys)], _bulks((*keys, *args)))
        return encode((b"EVALSHA", self.sha, len(keys), *keys, *args))


@dataclass(frozen=True)
class Endpoint:
    """Where Redis is and how to open a session there, parsed once from the URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""  # a unix socket, instead of host and port
    username: str = ""
    password: str = ""
    db: int = 0
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Redis URL scheme {parts.scheme!r} is not supported by the rate limiter's client; "
                             "use redis://, rediss:// (TLS) or unix://.")
        # The database: ?db=N, else the path of a redis:// URL (/N); a unix:// path is the socket's.
        db_text = query.get("db") or (parts.path.strip("/") if parts.scheme != "unix" else "") or "0"
        try:
            db = int(db_text)
            port = parts.port or 6379
        except ValueError as exc:
            raise ValueError(f"Redis URL {redacted(url)!r}: bad port or database number ({exc}).") from exc
        username = unquote(parts.username or "")
        password = unquote(parts.password or "") or query.get("password", "")
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("A unix:// Redis URL needs the socket's path: unix:///run/redis.sock")
            return cls(path=parts.path, username=username, password=password, db=db)
        tls = _tls_context(query) if parts.scheme == "rediss" else None
        return cls(host=parts.hostname or "127.0.0.1", port=port, username=username, password=password, db=db,
                   tls=tls)

    def handshake(self) -> list[tuple[Any, ...]]:
        """The commands that open a session: AUTH when there are credentials, SELECT unless db 0."""
        commands: list[tuple[Any, ...]] = []
        if self.password:
            commands.append((b"AUTH", self.username, self.password) if self.username else (b"AUTH", self.password))
        if self.db:
            commands.append((b"SELECT", self.db))
        return commands


class RespClient:
    """Commands to one Redis over one pipelined connection, for concurrent callers in one event loop.

    `call` and `evalsha` raise ReplyError for an error reply and RedisUnavailable when no reply can come.
    """

    def __init__(self, url: str, *, timeout_s: float = 0.25) -> None:
        self.endpoint = Endpoint.from_url(url)
        self.timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None

    async def call(self, *args: Any) -> Reply:
        """One command, e.g. `await client.call("SET", "k", 1)`."""
        return await self.send(encode(args))

    def send(self, command: bytes) -> Awaitable[Reply]:
        """One encoded command's reply. A plain function: on the open connection it is that connection's
        future, so a caller awaiting it resumes with one coroutine frame fewer."""
        conn = self._conn
        if conn is None or conn.closed or conn.loop is not asyncio.get_running_loop():
            return self._send_connecting(command)
        return conn.send(command)

    async def _send_connecting(self, command: bytes) -> Reply:
        conn = await self._connection()
        return await conn.send(command)

    async def evalsha(self, script: Script, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Reply:
        """Run `script` by its SHA; a server without it (restarted, flushed) gets the source once (EVAL,
        which also caches it there)."""
        try:
            return await self.send(script.evalsha_command(keys, args))
        except ReplyError as exc:
            if exc.code != "NOSCRIPT":
                raise
        return await self.eval(script, keys, args)

    async def eval(self, script: Script, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Reply:
        """Run `script` from its source (EVAL): what `evalsha` falls back to when the server answers NOSCRIPT."""
        return await self.call(b"EVAL", script.source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        """Close the connection, failing what is still pending; a later call opens a new one."""
        opening = self._opening
        if opening is not None and not opening.done() and opening.get_loop() is asyncio.get_running_loop():
            # Let it finish (it is bounded by timeout_s) rather than cancel it under its waiters' feet.
            await asyncio.wait([opening])
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close(RedisUnavailable("the Redis client was closed"))

    async def _connection(self) -> _Connection:
        """The open connection in this loop, opening one (one attempt at a time, shared by its callers)."""
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is not None and conn.loop is not loop:
            # Made in another event loop (a test's earlier asyncio.run): unusable here.
            self._conn = conn = None
        if conn is not None and not conn.closed:
            return conn
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            opening = self._opening = loop.create_task(self._open(loop))
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    def _opened(self, task: asyncio.Task[_Connection]) -> None:
        if self._opening is task:
            self._opening = None
        if not task.cancelled() and task.exception() is None:  # retrieving it keeps asyncio from warning
            self._conn = task.result()

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        endpoint = self.endpoint
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if endpoint.path:
                    _, conn = await loop.create_unix_connection(lambda: _Connection(loop, self.timeout_s),
                                                                endpoint.path)
                else:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(loop, self.timeout_s), endpoint.host, endpoint.port, ssl=endpoint.tls,
                        server_hostname=endpoint.host if endpoint.tls else None)
                replies = await asyncio.gather(*(conn.send(encode(c)) for c in endpoint.handshake()),
                                               return_exceptions=True)
        except (OSError, TimeoutError, RedisUnavailable) as exc:  # TimeoutError is asyncio.timeout's
            if conn is not None:
                conn.close(RedisUnavailable("connection setup failed"))
            raise RedisUnavailable(f"cannot connect to Redis: {str(exc) or type(exc).__name__}") from exc
        for reply in replies:
            if isinstance(reply, RedisUnavailable):
                raise RedisUnavailable(f"cannot connect to Redis: {reply}")
            if isinstance(reply, BaseException):
                conn.close(RedisUnavailable("connection setup failed"))
                raise RedisUnavailable(f"Redis refused the session (AUTH / SELECT): {reply}")
        return conn


class _Connection(asyncio.Protocol):
    """One socket: commands out in batches, replies in, matched to their callers in FIFO order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[asyncio.Future[Reply], float]] = deque()  # (caller, deadline)
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None

    def send(self, payload: bytes) -> asyncio.Future[Reply]:
        """Queue one encoded command; the future gets its reply. Written at the end of this loop turn."""
        if self.closed:
            raise RedisUnavailable("the connection to Redis is closed")
        future = self.loop.create_future()
        deadline = self.loop.time() + self.timeout_s
        self.pending.append((future, deadline))
        out = self._out
        out.append(payload)
        if len(out) == 1:
            self.loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watchdog = self.loop.call_at(deadline, self._check)
        return future

    def _flush(self) -> None:
        out = self._out
        if self.closed or not out or self.transport is None:
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _check(self) -> None:
        """The watchdog: drop the connection when its oldest unanswered command is past its deadline."""
        self._watchdog = None
        if self.closed or not self.pending:
            return
        deadline = self.pending[0][1]
        if deadline <= self.loop.time() + _TIMER_SLACK_S:
            self.close(RedisUnavailable(f"no reply from Redis within {self.timeout_s:g} s"), abort=True)
        else:
            self._watchdog = self.loop.call_at(deadline, self._check)

    # --- asyncio.Protocol ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pending = self.pending
        position = 0
        try:
            while pending:
                reply, after = parse(buffer, position)
                if after == position:
                    break  # the rest of this reply has not arrived yet
                position = after
                future = pending.popleft()[0]
                if not future.done():  # else its caller gave up (cancelled); the reply is dropped
                    if type(reply) is ReplyError:
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except (ValueError, IndexError) as exc:
            self.close(RedisUnavailable(f"unreadable reply from Redis ({exc})"), abort=True)
            return
        if position:
            del buffer[:position]
        if buffer and not pending:
            self.close(RedisUnavailable("Redis sent a reply nobody asked for"), abort=True)

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"the connection to Redis was lost ({exc})" if exc else "Redis closed the connection"
        self.close(RedisUnavailable(reason))

    def close(self, error: RedisUnavailable, abort: bool = False) -> None:
        """Fail every pending call with `error` (each its own copy) and let the socket go."""
        if self.closed:
            return
        self.closed = True
        self._out.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self.transport is not None and not self.loop.is_closed():
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        pending = self.pending
        while pending:
            future = pending.popleft()[0]
            if not future.done():
                future.set_exception(RedisUnavailable(*error.args))


def encode(args: tuple[Any, ...]) -> bytes:
    """A command in RESP2: an array of bulk strings. Arguments: bytes, str (UTF-8), int or float."""
    return b"*%d\r\n%s" % (len(args), _bulks(args))


def _bulks(args: tuple[Any, ...]) -> bytes:
    parts = []
    for arg in args:
        if type(arg) is not bytes:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = b"%d" % arg
            elif isinstance(arg, float):
                arg = repr(arg).encode()
            else:
                arg = bytes(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def parse(buffer: bytearray, position: int) -> tuple[Reply, int]:
    """One reply from `buffer` at `position`: (reply, the position after it), or (None, position) when it is
    not all there yet. Integer, bulk, array, simple string and error replies (RESP2); ValueError otherwise."""
    whole = _FOUR_INTEGERS.match(buffer, position)
    if whole is not None:
        first, second, third, fourth = whole.groups()
        return [int(first), int(second), int(third), int(fourth)], whole.end()
    end = buffer.find(b"\r\n", position)
    if end < 0:
        return None, position
    kind = buffer[position]
    if kind == 58:  # ":" integer
        return int(buffer[position + 1:end]), end + 2
    if kind == 36:  # "$" bulk string
        size = int(buffer[position + 1:end])
        if size < 0:
            return None, end + 2
        start = end + 2
        if len(buffer) < start + size + 2:
            return None, position
        return bytes(buffer[start:start + size]), start + size + 2
    if kind == 42:  # "*" array
        count = int(buffer[position + 1:end])
        if count < 0:
            return None, end + 2
        items = []
        after = end + 2
        for _ in range(count):
            if after < len(buffer) and buffer[after] == 58:  # an integer, inline: a script's usual answer
                end = buffer.find(b"\r\n", after)
                if end < 0:
                    return None, position
                items.append(int(buffer[after + 1:end]))
                after = end + 2
                continue
            item, next_after = parse(buffer, after)
            if next_after == after:
                return None, position
            items.append(item)
            after = next_after
        return items, after
    if kind == 43:  # "+" simple string
        return bytes(buffer[position + 1:end]), end + 2
    if kind == 45:  # "-" error
        return ReplyError(buffer[position + 1:end].decode("utf-8", "replace")), end + 2
    raise ValueError(f"unknown reply type {chr(kind)!r}")


def _tls_context(query: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs") or None)
    requirement = query.get("ssl_cert_reqs", "required").lower()
    if requirement in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE if requirement == "none" else ssl.CERT_OPTIONAL
    elif requirement != "required":
        raise ValueError(f"ssl_cert_reqs={requirement!r} in the Redis URL: use required, optional or none.")
    return context
