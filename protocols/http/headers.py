"""The proxy's request-head rules: hop-by-hop filtering, forwarded fields, trusted peers, request ids, path cleanup."""
from __future__ import annotations

import ipaddress
import itertools
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

from protocols.upstream import HOP_BY_HOP

if TYPE_CHECKING:
    from protocols.http.plugins import GuardedSend

Headers = list[tuple[bytes, bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

VIA = b"1.1 rusta"
VIA_HTTP2 = b"2 rusta"  # a request received over HTTP/2 (RFC 9110 7.6.3: the protocol as received)
# Fields the proxy reads or replaces itself; everything else is forwarded untouched, in order. Expect is ours
# to answer (uvicorn sends 100 Continue when the body is first read), never the backend's. Traceparent is
# replaced by the gateway's own span (protocols.tracing). X-Consumer-Name is the gateway's to say (the consumer a
# key or token resolved to, protocols.auth.consumers): a client's copy is dropped on every route.
_HANDLED = HOP_BY_HOP | {
    b"host", b"content-length", b"expect", b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto",
    b"x-forwarded-host", b"via", b"traceparent", b"x-consumer-name",
}
# RequestHead.traceparent when the client sent the field more than once: invalid, so a new trace starts.
_REPEATED = b"repeated"
_PLAIN_CONNECTION_OPTIONS = frozenset({b"keep-alive", b"close", b""})
_VISIBLE_ASCII = bytes(range(0x21, 0x7F))
_MAX_REQUEST_ID = 200
# Caches of per-peer and per-host work; cleared when full so a scan of many addresses cannot grow them forever.
_CACHE_LIMIT = 4096


class RequestHead:
    """What the proxy needs from the client's header fields, gathered in one pass."""

    __slots__ = ("forward", "host", "request_id", "content_length", "chunked", "forwarded_for",
                 "forwarded_proto", "forwarded_host", "via", "traceparent")

    def __init__(self) -> None:
        self.forward: Headers = []
        self.host = b""
        self.request_id = b""
        self.content_length: int | None = None
        self.chunked = False
        self.forwarded_for = b""
        self.forwarded_proto = b""
        self.forwarded_host = b""
        self.via = b""
        self.traceparent: bytes | None = None  # the client's, for protocols.tracing.traceparent_from

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


def _joined(previous: bytes, value: bytes) -> bytes:
    # Repeated list fields combine into one with ", " (RFC 9110 5.3).
    return value if not previous else previous + b", " + value


def scan_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """Split ASGI request headers (lower-case names) into forwarded fields and the ones the proxy handles.

    Drops every hop-by-hop field and every field named in Connection (RFC 9110 7.6.1).
    """
    head = RequestHead()
    forward = head.forward
    connection = b""
    for item in raw:
        name = item[0]
        if name not in _HANDLED:
            forward.append(item)
            continue
        value = item[1]
        if name == b"host":
            head.host = value
        elif name == b"x-request-id":
            head.request_id = value
        elif name == b"content-length":
            head.content_length = int(value)
        elif name == b"transfer-encoding":
            head.chunked = True
        elif name == b"connection":
            connection = _joined(connection, value)
        elif name == b"x-forwarded-for":
            head.forwarded_for = _joined(head.forwarded_for, value)
        elif name == b"x-forwarded-proto":
            head.forwarded_proto = value
        elif name == b"x-forwarded-host":
            head.forwarded_host = value
        elif name == b"via":
            head.via = _joined(head.via, value)
        elif name == b"traceparent":
            head.traceparent = value if head.traceparent is None else _REPEATED
    if connection:
        named = {option.strip().lower() for option in connection.split(b",")} - _PLAIN_CONNECTION_OPTIONS
        if named:
            head.forward = [item for item in forward if item[0] not in named]
    return head


class RequestIds:
    """X-Request-ID values: the client's when it is 1-200 visible ASCII characters, otherwise a new one.

    New ids are a random per-process prefix plus a counter: unique across workers and restarts in practice, and
    far cheaper than a UUID per request.
    """

    __slots__ = ("_prefix", "_counter")

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex().encode()
        self._counter = itertools.count(1)

    def take(self, offered: bytes) -> bytes:
        if offered and len(offered) <= _MAX_REQUEST_ID and not offered.translate(None, _VISIBLE_ASCII):
            return offered
        return b"%s-%08x" % (self._prefix, next(self._counter))


def answer_head(headers: Headers, request_id: bytes, extra: Headers | None, guard: GuardedSend | None = None,
                via: bool = True) -> Headers:
    """Every response head the gateway sends (the backend's, the cache's, its own errors and preflights) gets
    its fields here: X-Request-ID, Via when the answer passed through (RFC 9110 7.6.3), the exchange's `extra`
    fields (a limited route's RateLimit-*), then the route's CORS and security fields from `guard`. A shaped
    answer passes no `guard`: it is sent through the GuardedSend, which adds them once the shaping is done.
    Appends to `headers`, which must be the caller's own list, and returns the head."""
    if request_id:
        headers.append((b"x-request-id", request_id))
    if via:
        headers.append((b"via", VIA))
    if extra:
        headers += extra
    if guard is not None:
        headers = guard.guards.response_headers(headers, guard.origin, guard.https)
    return headers


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR ranges (settings.RUSTA_TRUSTED_PROXIES) as networks; raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip())


class TrustedPeers:
    """Answers "is this peer a trusted proxy?" with a dict lookup after the first request from each address."""

    __slots__ = ("networks", "_known")

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self._known: dict[str, bool] = {}

    def __contains__(self, address: str) -> bool:
        if not self.networks:
            return False
        known = self._known.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in network for network in self.networks)
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known[address] = known
        return known


def client_address(peer: str, forwarded_for: bytes, trusted: TrustedPeers) -> str:
    """The client as far as we can trust the chain: the rightmost X-Forwarded-For entry that is not one of our
    trusted proxies (each trusted hop vouches only for the address it received from). Call it only when `peer`
    itself is trusted."""
    address = peer
    for entry in reversed(forwarded_for.split(b",")):
        candidate = entry.strip().decode("latin-1")
        if not candidate:
            continue
        address = candidate
        if candidate not in trusted:
            break
    return address


_host_keys: dict[bytes, str] = {}


def host_key(value: bytes) -> str:
    """The Host field as the route table matches it: lower-case, without port (IPv6 literals keep brackets)."""
    key = _host_keys.get(value)
    if key is None:
        text = value.decode("latin-1").strip().lower()
        if text.startswith("["):
            end = text.find("]")
            key = text[: end + 1] if end > 0 else text
        else:
            key = text.partition(":")[0]
        if len(_host_keys) >= _CACHE_LIMIT:
            _host_keys.clear()
        _host_keys[value] = key
    return key


def raw_path(scope: dict[str, object]) -> str:
    """The request path as the client sent it (still percent-encoded, without the query)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1")
    return quote(str(scope["path"]), safe="/:@!$&'()*+,;=-._~")


def normalize_path(path: str) -> str:
    """RFC 3986 5.2.4 remove_dot_segments, also for %2e/%2E, so `/public/%2e%2e/admin` cannot escape a route."""
    if "%2" in path:
        path = path.replace("%2e", ".").replace("%2E", ".")
    if "/." not in path:
        return path
    segments = path.split("/")
    output: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")  # "/a/b/.." names the directory "/a/", keep its trailing slash
    return "/" + "/".join(output)
