"""The proxy listener's HTTP/1.1 protocol: uvicorn's httptools protocol held to RFC 9112 where an attacker looks.

uvicorn parses with llhttp, which already refuses the framing tricks (Content-Length with Transfer-Encoding,
duplicate or signed lengths, bare LF, obs-fold). What it lets through, this subclass refuses or repairs before
the application sees the request, so nothing below has to think about it:

- trailer fields of a chunked request are dropped, never merged into the header section (RFC 9110 6.5.1);
- Host: missing (HTTP/1.1), repeated or not a valid `uri-host[:port]` is 400 (RFC 9112 3.2);
- an absolute-form target's authority replaces Host (RFC 9112 3.2.2); asterisk-form, CONNECT's
  authority-form and other schemes are refused;
- a request line without a version (HTTP/0.9), or naming RTSP or ICE (which llhttp also parses), is 400; an HTTP
  major version other than 1 is 505 (a higher 1.x minor version is served as 1.1, RFC 9110 2.5);
- an Upgrade other than WebSocket is ignored, but such a request with a body is 400 (llhttp would not read it);
- Transfer-Encoding: a coding other than chunked is 501, chunked twice or not last, or on HTTP/1.0, is 400;
- targets with a backslash, a fragment, a `%` not followed by two hex digits, or `%00` are 400;
- field names with an underscore are dropped (or refused, or kept: `underscore_headers`), because back ends
  that map `-` and `_` to one variable would read the client's copy instead of the gateway's;
- trailing white space is trimmed from field values, so the head sent upstream is canonical;
- a head must arrive within `header_timeout` and a body must not stall for `body_timeout` (408), and one client
  address may hold at most `max_connections_per_client` connections per worker process (429).

Over TLS, every request's scope carries ASGI's TLS extension (`scope["extensions"]["tls"]`, protocols.tls.clients),
computed once per connection.

A connection whose TLS handshake chose "h2" by ALPN, or whose first bytes are the HTTP/2 client preface, is handed
to protocols.http.h2 (the same limits apply there, in HTTP/2's terms).

Every refusal is one JSON answer (`{"error", "type", "request_id"}`) with `Connection: close`, an access-log
line, and the connection closed. A refusal that concerns a pipelined request waits until the answers to the
requests before it are complete, so answers never interleave.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from protocols.http.accesslog import AccessLog
from protocols.http.cycle import ProxyCycle
from protocols.http.headers import Network, RequestIds, TrustedPeers
from protocols.tls.clients import TlsExtension, connection_extension
from protocols.write_batch import BatchedTransport, batch_of

UNDERSCORE_ACTIONS = ("drop", "reject", "allow")

# uri-host [ ":" port ] (RFC 3986 3.2.2): an IP literal in brackets, or a reg-name (which also covers IPv4).
_AUTHORITY = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]{0,5})?")
# What no valid origin-form target holds (llhttp already refuses controls, spaces and non-ASCII bytes).
_BAD_TARGET = re.compile(rb"[\\#]|%(?![0-9A-Fa-f]{2})|%00")
_ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)
_OWS = b" \t"
_OWS_CODES = (32, 9)
_OTHER_PROTOCOLS = re.compile(rb"RTSP/|ICE/")
_KEPT_LIMIT = 1 << 16
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4: what a client with prior knowledge sends first
_CACHE_LIMIT = 1024
_METHOD_NAMES = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """What the proxy listener allows a client, read from settings once (see README, "Hostile input")."""

    header_timeout: float = 10.0  # seconds from connection (or first byte of a request) to the end of its head
    body_timeout: float = 60.0  # seconds a request body may go without a byte from the client
    max_connections_per_client: int = 256  # per client address and worker process; 0: no cap
    underscore_headers: str = "drop"  # drop | reject | allow
    trusted_proxies: tuple[Network, ...] = ()  # peers exempt from the connection cap (they carry many clients)
    h2_max_streams: int = 128  # HTTP/2 streams one connection may have in progress (SETTINGS_MAX_CONCURRENT_STREAMS)
    h2_window_bytes: int = 1 << 16  # HTTP/2 request body one stream may have in flight (SETTINGS_INITIAL_WINDOW_SIZE)

    @classmethod
    def from_settings(cls, settings: Any) -> ListenerLimits:
        """From Django's settings (RUSTA_CLIENT_HEADER_TIMEOUT...; README's table); ValueError on a bad value."""
        from protocols.http.headers import parse_networks

        return cls(header_timeout=settings.RUSTA_CLIENT_HEADER_TIMEOUT,
                   body_timeout=settings.RUSTA_CLIENT_BODY_TIMEOUT,
                   max_connections_per_client=settings.RUSTA_MAX_CONNECTIONS_PER_CLIENT,
                   underscore_headers=settings.RUSTA_UNDERSCORE_HEADERS,
                   trusted_proxies=parse_networks(settings.RUSTA_TRUSTED_PROXIES),
                   h2_max_streams=settings.RUSTA_H2_MAX_STREAMS,
                   h2_window_bytes=settings.RUSTA_H2_WINDOW_BYTES)

    def __post_init__(self) -> None:
        if self.underscore_headers not in UNDERSCORE_ACTIONS:
            raise ValueError(f"underscore_headers must be one of {', '.join(UNDERSCORE_ACTIONS)}")
        if self.header_timeout <= 0 or self.body_timeout <= 0:
            raise ValueError("header_timeout and body_timeout must be above 0 seconds")
        if self.max_connections_per_client < 0:
            raise ValueError("max_connections_per_client must be 0 (no cap) or more")
        if self.h2_max_streams < 1:
            raise ValueError("h2_max_streams must be 1 or more")
        if not 1024 <= self.h2_window_bytes <= 2**31 - 1:
            raise ValueError("h2_window_bytes must be between 1024 and 2147483647 (RFC 9113 6.5.2)")


class Refusal(Exception):
    """A request the listener answers itself, before any application sees it."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class Swept(Protocol):
    """A connection the listener's sweep holds to its time limits (HTTP/1.1 or HTTP/2)."""

    def check_timeouts(self, now: float) -> None: ...


@dataclass
class ListenerState:
    """One per listener and worker process: the limits, the open connections per client address, the sweep that
    enforces the timeouts, and where refusals are logged."""

    limits: ListenerLimits = field(default_factory=ListenerLimits)
    access_log: AccessLog | None = None
    clock: Callable[[], float] = time.monotonic
    connections: set[Swept] = field(default_factory=set)
    per_client: dict[str, int] = field(default_factory=dict)
    request_ids: RequestIds = field(default_factory=RequestIds)
    # The clock as of the last sweep: connections stamp their reads with it (no clock call per read); the
    # timeouts are kept to within one sweep interval.
    now: float = field(default=0.0, init=False)
    _exempt: TrustedPeers = field(init=False)
    _sweep: asyncio.TimerHandle | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._exempt = TrustedPeers(self.limits.trusted_proxies)
        self.now = self.clock()

    def admit(self, address: str) -> bool:
        cap = self.limits.max_connections_per_client
        if not cap or address in self._exempt:
            return True
        count = self.per_client.get(address, 0)
        if count >= cap:
            return False
        self.per_client[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.per_client.get(address, 0) - 1
        if count > 0:
            self.per_client[address] = count
        else:
            self.per_client.pop(address, None)

    def watch(self, connection: Swept, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(connection)
        if self._sweep is None:
            self.now = self.clock()
            self._sweep = loop.call_later(self._interval(), self._run_sweep, loop)

    def _interval(self) -> float:
        shortest = min(self.limits.header_timeout, self.limits.body_timeout)
        return min(1.0, max(0.05, shortest / 4))

    def _run_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self.now = self.clock()
        for connection in list(self.connections):
            connection.check_timeouts(now)
        self._sweep = loop.call_later(self._interval(), self._run_sweep, loop) if self.connections else None


class StrictHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the checks of this module's docstring; build it with `protocol_factory`."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, listener: ListenerState) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.parser.set_dangerous_leniencies(lenient_version=True)  # llhttp's 400 would preempt our 505 below
        self.listener = listener
        self._address = ""  # the client address counted against the cap ("" when not counted)
        self._last_read = 0.0
        self._idle_since: float | None = None  # kept alive between requests since (as first seen by the sweep)
        self._head_since: float | None = None  # while a head is awaited: when its wait began (or was first seen)
        self._hosts = 0
        self._host = b""
        self._codings: bytes | None = None
        self._complete_scope: Any = None  # the scope of the last request whose head is complete
        self._refusal: Refusal | None = None  # waiting for the answers before it to complete
        # llhttp also parses RTSP/ and ICE/ request lines and httptools does not say which protocol a line named:
        # reads that hold one of those tokens are kept (with the read before) until the head is checked. A line
        # that arrives in pieces too small to show its start in those reads is refused rather than guessed at.
        self._previous_read = b""
        self._tail = b""
        self._kept: bytearray | None = None
        self._tls: TlsExtension | None = None
        self._preface = b""  # the connection's first bytes while they may be the HTTP/2 client preface
        self._drop_underscores = listener.limits.underscore_headers == "drop"
        self._reject_underscores = listener.limits.underscore_headers == "reject"

    # Connection life
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Complete answers are written at the end of the loop turn, together (protocols.write_batch).
        self.transport = BatchedTransport(transport, batch_of(self.loop))  # type: ignore[assignment]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # the handshake is complete: the client certificate is known
            self._tls = connection_extension(ssl_object)
        self._last_read = self._head_since = self.listener.clock()
        address = self.client[0] if self.client else ""
        if address and not self.listener.admit(address):
            self._refuse_now(Refusal(429, "too_many_connections",
                                     f"Too many connections from {address} "
                                     f"(at most {self.listener.limits.max_connections_per_client})."))
            return
        self._address = address
        self.listener.watch(self, self.loop)
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self._to_http2(b"")

    def _sniff(self, data: bytes) -> bytes:
        """The connection's first bytes: the HTTP/2 client preface, whole or in pieces, hands the connection to
        protocols.http.h2; anything else is returned, to be read as HTTP/1.1."""
        seen = self._preface + data
        size = min(len(seen), 24)
        if seen[:size] != H2_PREFACE[:size]:
            self._preface = b""
            return seen
        if size < 24:
            self._preface = seen
        else:
            self._to_http2(seen)
        return b""

    def _to_http2(self, first_bytes: bytes) -> None:
        """Hand the transport to the HTTP/2 protocol; the connection stays counted against the client's cap."""
        from protocols.http.h2 import Http2Protocol  # (here: it reads this module's checks)

        if self.transport.is_closing():
            return
        self._unwrap_transport()
        self._unset_keepalive_if_required()
        self.connections.discard(self)  # uvicorn's set: the HTTP/2 protocol enters it itself
        self.listener.connections.discard(self)
        address, self._address = self._address, ""
        protocol = Http2Protocol(self.config, self.server_state, self.app_state, self.loop, listener=self.listener,
                                 address=address, extensions=None if self._tls is None else {"tls": self._tls})
        protocol.take_over(self.transport, self.server, self.client, self.scheme or "http",
                           self._head_since or self.listener.clock(), first_bytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def _forget(self) -> None:
        self.listener.connections.discard(self)
        if self._address:
            self.listener.release(self._address)
            self._address = ""

    def _unwrap_transport(self) -> None:
        """Before another protocol takes the connection over: what the batch holds is written, and the transport
        it gets is the connection's own."""
        transport = self.transport
        if isinstance(transport, BatchedTransport):
            transport.flush()
            self.transport = transport.transport

    def handle_websocket_upgrade(self) -> None:
        self._unwrap_transport()
        self._forget()  # the WebSocket protocol takes the transport over; its own limits apply from here
        self._head_since = None
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        self._last_read = self.listener.now
        self._idle_since = None
        if self._refusal is not None or self.parser is None:
            return  # nothing after a refused request is read
        if not self._previous_read:  # the connection's first read (or the preface's pieces so far)
            data = self._sniff(data)
            if not data:
                return
        if self._kept is not None:
            if len(self._kept) < _KEPT_LIMIT:  # a request line is at its start
                self._kept += data
        # (find() and int membership: `bytes in bytes` costs twice as much on the hot path.)
        elif (data.find(b"RTSP/") >= 0 or data.find(b"ICE/") >= 0
              or (47 in data[:4]  # a "/" that may finish a token the reads before began
                  and _OTHER_PROTOCOLS.search(self._tail + data[:4]) is not None)):
            self._kept = bytearray(self._previous_read) + data
        self._previous_read = data
        self._tail = data[-4:] if len(data) >= 4 else (self._tail + data)[-4:]  # the stream's last 4 bytes
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            self._refuse(cause if isinstance(cause, Refusal) else Refusal(400, "malformed_request", str(exc)))
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            elif self.cycle is not None:
                # Another Upgrade (h2c...) is ignored, as RFC 9110 7.8 allows; llhttp stops reading at it, so
                # the connection ends with this answer.
                self.cycle.keep_alive = False
        except httptools.HttpParserError as exc:
            self._refuse(Refusal(400, "malformed_request", f"Invalid HTTP request: {exc}."))
        if self._kept is not None and not self._head_in_progress():
            self._kept = None  # no head is in progress: the next one is checked from its own reads

    def _head_in_progress(self) -> bool:
        """A request has begun (uvicorn made its scope) and its head is not complete yet."""
        scope = self.scope
        return scope is not None and scope is not self._complete_scope

    # Parser callbacks
    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[dict-item]  # (typed loosely by uvicorn)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._complete_scope is self.scope:
            return  # a trailer field: never merged into the header section (RFC 9110 6.5.1)
        name = name.lower()
        if 95 in name:  # "_"
            if self._drop_underscores:
                return
            if self._reject_underscores:
                raise Refusal(400, "invalid_header_name",
                              f"Field name {name.decode('latin-1')!r} has an underscore; this gateway refuses them.")
        if value and value[-1] in _OWS_CODES:
            value = value.rstrip(_OWS)
        if name == b"host":
            self._hosts += 1
            self._host = value
        elif name == b"transfer-encoding":
            self._codings = value if self._codings is None else self._codings + b"," + value
        elif name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._head_since = None
        hosts, codings = self._hosts, self._codings
        self._hosts = 0
        self._codings = None
        if self._kept is not None:
            self._check_protocol(self.url)
        parser = self.parser
        version = parser.get_http_version()
        url = self.url
        # The common request (HTTP/1.1, one known-good Host, origin-form, no transfer coding, no Upgrade) takes one
        # test and the target's; anything else goes through every check.
        if (version != "1.1" or hosts != 1 or codings is not None or url[:1] != b"/"
                or self._host not in _GOOD_AUTHORITIES or parser.should_upgrade()):
            self._check_head(version, hosts, codings, url)
        if _BAD_TARGET.search(self.url) is not None:
            raise Refusal(400, "invalid_target", "The request target has a backslash, a fragment, an invalid "
                          "percent-encoding or an encoded NUL.")
        self._start_cycle(version)
        self._complete_scope = self.scope  # header fields of this message from now on are trailers

    def _start_cycle(self, version: str) -> None:
        """uvicorn's on_headers_complete, with the gateway's ProxyCycle (protocols.http.cycle) and without its
        concurrency limit (never configured here)."""
        parser = self.parser
        scope = self.scope
        method = parser.get_method()
        scope["method"] = _METHOD_NAMES.get(method) or method.decode("ascii")
        if version != "1.1":
            scope["http_version"] = version
        if parser.should_upgrade() and self._should_upgrade():
            return
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        root = self.root_path
        scope["path"] = root + path if root else path
        scope["raw_path"] = root.encode("ascii") + raw_path if root else raw_path
        scope["query_string"] = url.query or b""
        existing = self.cycle
        cycle = self.cycle = ProxyCycle(scope, self.transport, self.flow, self.loop,
                                        self.server_state.default_headers,
                                        version != "1.0" and parser.should_keep_alive(), self.expect_100_continue,
                                        self.on_response_complete)
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, self.app)
        else:
            # Pipelined requests wait for the answers before theirs.
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _check_head(self, version: str, hosts: int, codings: bytes | None, url: bytes) -> None:
        major = version.partition(".")[0]
        if major != "1":
            if version == "0.9":
                raise Refusal(400, "invalid_request_line", "The request line has no HTTP version.")
            raise Refusal(505, "http_version_not_supported", f"HTTP/{version} is not served here.")
        if hosts != 1 and (hosts or version != "1.0"):
            raise Refusal(400, "invalid_host", "An HTTP/1.1 request needs exactly one Host field."
                          if not hosts else "The request has more than one Host field.")
        if url[:1] != b"/":
            self._absolute_form(url)
        elif hosts and not _valid_authority(self._host):
            raise Refusal(400, "invalid_host", "The Host field is not a valid host[:port].")
        if codings is not None:
            _check_codings(codings, version)
        if self.parser.should_upgrade() and not self._should_upgrade():
            self._check_other_upgrade()

    def _check_protocol(self, url: bytes) -> None:
        """Only `HTTP/` request lines are served: refuse the line when the kept reads show it named another
        protocol, or cannot show that it named HTTP."""
        line = self.parser.get_method() + b" " + url + b" "
        kept = self._kept
        assert kept is not None
        if kept.find(line + b"HTTP/") < 0 or kept.find(line + b"RTSP/") >= 0 or kept.find(line + b"ICE/") >= 0:
            raise Refusal(400, "invalid_request_line", "The request line does not name HTTP/1.x.")

    def _check_other_upgrade(self) -> None:
        """An Upgrade other than WebSocket is ignored (RFC 9110 7.8), but llhttp stops reading at such a head
        and would leave its body unread: a request that asks for one cannot carry a body."""
        for name, value in self.headers:
            if (name == b"content-length" and value.strip(b"0")) or name == b"transfer-encoding":
                raise Refusal(400, "unsupported_upgrade", "This gateway upgrades only to WebSocket, and a "
                              "request that asks for another protocol cannot carry a body here.")

    def _absolute_form(self, url: bytes) -> None:
        """RFC 9112 3.2.2: the authority of an absolute-form target replaces Host; the path is what routes."""
        if self.parser.get_method() == b"CONNECT":
            raise Refusal(501, "method_not_implemented", "CONNECT is not served: this is not a forward proxy.")
        if url == b"*":
            raise Refusal(400, "invalid_target", "The asterisk-form target is not served.")
        match = _ABSOLUTE.fullmatch(url)
        if match is None or match[1].lower() not in (b"http", b"https"):
            raise Refusal(400, "invalid_target", "The request target must be a path or an http(s) URL.")
        authority, rest = match[2], match[3]
        if not authority or b"@" in authority or not _valid_authority(authority):
            raise Refusal(400, "invalid_target", "The target URL's authority is not a valid host[:port].")
        headers = self.headers
        for index, (name, _) in enumerate(headers):
            if name == b"host":
                headers[index] = (b"host", authority)
                break
        else:
            headers.append((b"host", authority))
        self.url = rest if rest[:1] == b"/" else b"/" + rest

    def on_response_complete(self) -> None:
        last = not self.pipeline  # the answer just completed was the last one owed before a refusal
        # uvicorn's, but the keep-alive timeout is the listener's sweep's to enforce (no timer per request).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        if self._refusal is not None and last:
            refusal, self._refusal = self._refusal, None
            self._refuse_now(refusal)

    # Refusals
    def _reading_body(self) -> bool:
        """A request's body is being read: its head was the last one parsed and its message is not complete (once
        its answer is complete, uvicorn stops marking the end of its body: it stays "being read")."""
        cycle = self.cycle
        return cycle is not None and self._complete_scope is self.scope and cycle.more_body

    def _refuse(self, refusal: Refusal) -> None:
        in_body = self._reading_body()
        self._head_since = None
        cycle = self.cycle
        owed = cycle is not None and not cycle.response_complete or bool(self.pipeline)
        if in_body and cycle is not None:
            # The broken bytes belong to the body of the newest request.
            if any(queued is cycle for queued, _ in self.pipeline):
                self.pipeline = deque(entry for entry in self.pipeline if entry[0] is not cycle)  # never run
                self._refusal = refusal  # after the answers to the requests before it
            elif cycle.response_complete:
                self.transport.close()  # it was answered without its body: there is nothing left to say
            else:
                self._abandon(cycle)  # the application is reading it: answer now if it has not
                if cycle.response_started:
                    self.transport.close()
                else:
                    self._refuse_now(refusal)
        elif owed:
            self._refusal = refusal  # after the answers to the requests before it
        else:
            self._refuse_now(refusal)

    def _abandon(self, cycle: Any) -> None:
        """The application's request is over: its reads see a disconnect and its writes go nowhere."""
        cycle.disconnected = True
        cycle.message_event.set()

    def _refuse_now(self, refusal: Refusal) -> None:
        self._head_since = None
        request_id = self.listener.request_ids.take(b"").decode()
        method = self._method()
        # An answer to HEAD has no content; a line broken after its method still asked with that method.
        head_only = method == "HEAD" or (self.scope is not None and self._method(started=True) == "HEAD")
        body = json.dumps({"error": refusal.message, "type": refusal.kind, "request_id": request_id}).encode()
        head = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nx-request-id: %s\r\n"
                    b"connection: close\r\n\r\n" % (len(body), request_id.encode()))
        if not self.transport.is_closing():
            self.transport.write(b"".join(head) + (b"" if head_only else body))
            self.transport.close()
        log = self.listener.access_log
        if log is not None:
            target = self.url.partition(b"?")[0][:200].decode("latin-1") if self.scope is not None else ""
            log.record(time.time(), request_id, method, target, None, None, refusal.status, 0.0, 0, 0,
                       self.client[0] if self.client else "", refusal.kind)

    def _method(self, started: bool = False) -> str:
        """The refused request's method, as far as it was read ("" before its target, unless `started`: then
        llhttp's guess once a request began)."""
        if self.scope is None:
            return ""
        method: str = self.scope.get("method") or ""
        if not method and (self.url or started) and self.parser is not None:
            with contextlib.suppress(httptools.HttpParserError):
                method = self.parser.get_method().decode("latin-1")
        return method

    # Timeouts, checked by the listener's sweep
    def check_timeouts(self, now: float) -> None:
        cycle = self.cycle
        if (cycle is not None and cycle.response_complete and not cycle.more_body and not self.pipeline
                and not self._head_in_progress()):
            # Kept alive between requests: from the first sweep that sees it so (data_received forgets it), so a
            # connection is closed after at least the keep-alive timeout without a byte, at most one sweep more.
            idle = self._idle_since
            if idle is None:
                self._idle_since = now
            elif now - idle > self.timeout_keep_alive:
                self.transport.close()
            return
        limits = self.listener.limits
        since = self._head_since
        if since is None and self._head_in_progress():
            since = self._head_since = now  # a head began on a kept-alive connection since the last sweep
        if since is not None and now - since > limits.header_timeout:
            self._head_since = None
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False  # a pipelined head stalled: close once the current answer is out
            elif self.scope is not None:  # part of a head arrived
                self._refuse_now(Refusal(408, "request_header_timeout",
                                         f"The request head did not arrive within {limits.header_timeout:g} s."))
            else:
                self.transport.close()  # a connection that never sent a byte: nothing to answer
            return
        if now - self._last_read > limits.body_timeout and self._reading_body():
            cycle = self.cycle
            if self.flow.read_paused or cycle.waiting_for_100_continue:
                self._last_read = now  # the gateway is not reading (back-pressure, 100-continue): not the client
                return
            if cycle.response_started:
                self.transport.close()
                return
            cycle.scope["state"]["rusta.refused"] = (408, "request_body_timeout")  # for the access log
            self._abandon(cycle)
            self._refuse_now(Refusal(408, "request_body_timeout",
                                     f"The request body stalled for {limits.body_timeout:g} s."))


_GOOD_AUTHORITIES: set[bytes] = set()  # Host values already found valid (bounded)


def _valid_authority(value: bytes) -> bool:
    if value in _GOOD_AUTHORITIES:
        return True
    if _AUTHORITY.fullmatch(value) is None:
        return False
    if len(_GOOD_AUTHORITIES) >= _CACHE_LIMIT:
        _GOOD_AUTHORITIES.clear()
    _GOOD_AUTHORITIES.add(value)
    return True


def _check_codings(value: bytes, version: str) -> None:
    """RFC 9112 6.1 and 6.3: only chunked is implemented, once and last; HTTP/1.0 has no transfer codings."""
    if version == "1.0":
        raise Refusal(400, "invalid_framing", "Transfer-Encoding is not allowed in an HTTP/1.0 request.")
    codings = [coding.strip().lower() for coding in value.split(b",")]
    if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        raise Refusal(400, "invalid_framing", "chunked must be the last transfer coding, applied once.")
    others = [coding.decode("latin-1") for coding in codings if coding != b"chunked"]
    if others:
        raise Refusal(501, "transfer_coding_not_implemented",
                      f"Transfer coding {', '.join(others)} is not implemented; only chunked is.")


def protocol_factory(state: ListenerState) -> Callable[..., StrictHttpProtocol]:
    """What uvicorn's `Config(http=...)` takes to build the proxy listener's connections."""
    return functools.partial(StrictHttpProtocol, listener=state)
