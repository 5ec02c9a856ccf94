"""The opening handshake towards the backend: its URI and header fields, the fields the client gets back, the
authorization hook (with the `api_key` query parameter of key routes), and the one conversion of connect failures
into Rusta's gateway errors."""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
    SecurityError,
)
from websockets.uri import parse_uri

from protocols.auth import Principal
from protocols.auth.consumers import API_KEY_HEADER, KEY_MODES, presented_key
from protocols.errors import (
    GatewayError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamNameNotResolved,
    UpstreamRefused,
    UpstreamReset,
)
from protocols.http.access import RouteAccess
from protocols.http.headers import VIA, RequestHead, TrustedPeers, client_address
from protocols.table import BackendSpec, CompiledRoute
from protocols.tracing import traceparent_from
from protocols.upstream import HOP_BY_HOP

Headers = list[tuple[bytes, bytes]]

# The handshake's own fields: the upstream connection makes its own key, version and offers.
HANDSHAKE_FIELDS = frozenset({
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-protocol",
    b"sec-websocket-accept",
})
# Fields of the backend's 101 answer that are not passed on: uvicorn writes its own handshake, Date and Server.
_ANSWER_DROPPED = HOP_BY_HOP | HANDSHAKE_FIELDS | {b"date", b"server", b"content-length", b"x-request-id"}
# Of a refused upgrade, the fields a client may act on.
_REJECTION_KEPT = frozenset({"www-authenticate", "retry-after"})
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_FORWARDED_PROTO = {"ws": b"http", "wss": b"https"}
# Browsers cannot set header fields on a WebSocket handshake, so a route that takes API keys also reads one from
# this query parameter (as Kong's key-auth reads `apikey`). It is the gateway's credential: never sent upstream.
API_KEY_PARAM = b"api_key"


class UpgradeRejected(UpstreamError):
    """The backend answered the upgrade with something other than 101. A 4xx keeps its status (with
    WWW-Authenticate and Retry-After), so a client can tell "not allowed" from "broken"; anything else is a 502."""

    def __init__(self, backend: str, status: int, headers: Headers) -> None:
        super().__init__(
            status if 400 <= status < 500 else 502, "upstream_upgrade_rejected",
            f"Backend {backend} refused the WebSocket upgrade with HTTP {status}.", headers,
        )


class InvalidUpgrade(UpstreamError):
    """502: the backend's answer to the upgrade is not a valid WebSocket handshake."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(
            502, "upstream_invalid_handshake", f"Backend {backend} sent an invalid WebSocket handshake: {reason}."
        )


class UpstreamConnect(connect):
    """websockets' client connect, minus redirects: a gateway passes a 3xx on (as a rejection), never follows
    one to wherever it points."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


@dataclass(slots=True)
class UpstreamRequest:
    """Everything needed to open the backend side of a tunnel."""

    uri: str
    headers: list[tuple[str, str]]
    subprotocols: list[str] | None
    backend: BackendSpec
    label: str  # host:port, for messages
    connect_kwargs: dict[str, Any] = field(default_factory=dict)


def upstream_request(route: CompiledRoute, backend: BackendSpec, params: dict[str, str], clean_path: str,
                     scope: dict[str, Any], head: RequestHead, request_id: bytes,
                     trusted: TrustedPeers, query: bytes | None = None) -> UpstreamRequest:
    """The backend's URI (internal path with the parameters filled in, plus the query: the client's, or `query`
    when the admission took a credential out of it) and the end-to-end fields of the client's request, with
    X-Forwarded-*, Via and X-Request-ID as the HTTP proxy sends them."""
    scheme = _SCHEMES.get(backend.scheme, "ws")
    host = f"[{backend.host}]" if ":" in backend.host else backend.host
    label = f"{host}:{backend.port}"
    target = route.upstream_path(params, clean_path)
    if query is None:
        query = scope.get("query_string") or b""
    if query:
        target += "?" + query.decode("latin-1")
    # The TCP (and TLS) peer is always the backend; the URI's authority only decides the Host field.
    kwargs: dict[str, Any] = {"host": backend.host, "port": backend.port}
    authority = label
    if route.spec.preserve_host and head.host:
        candidate = head.host.decode("latin-1")
        try:
            parse_uri(f"{scheme}://{candidate}/")
        except InvalidURI:
            pass  # not a usable authority: the backend's own goes out, as for a client without Host
        else:
            authority = candidate
            if scheme == "wss":
                kwargs["server_hostname"] = backend.host
    headers = [(name.decode("latin-1"), value.decode("latin-1"))
               for name, value in head.forward if name not in HANDSHAKE_FIELDS]
    for name, value in forwarded_fields(scope, head, trusted):
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    headers.append(("x-request-id", request_id.decode("latin-1")))
    headers.append(("traceparent", traceparent_from(head.traceparent)[0].decode("ascii")))
    subprotocols = list(scope.get("subprotocols") or ()) or None
    return UpstreamRequest(f"{scheme}://{authority}{target}", headers, subprotocols, backend, label, kwargs)


def forwarded_fields(scope: dict[str, Any], head: RequestHead, trusted: TrustedPeers) -> Headers:
    """X-Forwarded-For/-Proto/-Host and Via: appended to a trusted peer's chain, started afresh otherwise."""
    client = scope.get("client")
    peer_ip = client[0] if client else ""
    peer = peer_ip.encode()
    proto = _FORWARDED_PROTO.get(scope.get("scheme", "ws"), b"http")
    if peer_ip in trusted:
        forwarded_for = head.forwarded_for + b", " + peer if head.forwarded_for else peer
        proto = head.forwarded_proto or proto
        forwarded_host = head.forwarded_host or head.host
    else:
        forwarded_for = peer
        forwarded_host = head.host
    fields = [(b"x-forwarded-for", forwarded_for), (b"x-forwarded-proto", proto)]
    if forwarded_host:
        fields.append((b"x-forwarded-host", forwarded_host))
    fields.append((b"via", head.via + b", " + VIA if head.via else VIA))
    return fields


def client_ip(scope: dict[str, Any], head: RequestHead, trusted: TrustedPeers) -> str:
    """The client's address for the balancer (ip_hash): the peer, or the X-Forwarded-For entry a trusted peer
    vouches for."""
    client = scope.get("client")
    peer = client[0] if client else ""
    if head.forwarded_for and peer in trusted:
        return client_address(peer, head.forwarded_for, trusted)
    return peer


def answer_fields(response_headers: Any, request_id: bytes) -> Headers:
    """The backend's 101 fields the client should see (Set-Cookie and other end-to-end ones), plus our id."""
    fields: Headers = []
    if response_headers is not None:
        for name, value in response_headers.raw_items():
            key = name.lower().encode("latin-1")
            if key not in _ANSWER_DROPPED:
                fields.append((key, value.encode("latin-1", "replace")))
    fields.append((b"x-request-id", request_id))
    return fields


async def authorize_handshake(route: CompiledRoute, scope: dict[str, Any], access: RouteAccess | None = None,
                              client: str = "") -> Admission | None:
    """The route's credential (API key, JWT) and rate limit at the handshake, before a backend is picked or
    contacted (the same RouteAccess the HTTP proxy applies; `client` is the address rate limits key on). On a
    route that takes keys, a key in neither X-API-Key nor `Authorization: Bearer rk_...` is read from the
    `api_key` query parameter. Raises the GatewayError that refuses the upgrade (401/403 with WWW-Authenticate,
    429 with Retry-After, 503); returns what the backend and the client get on the way (claim headers,
    X-Consumer-Name, RateLimit-* fields), or None when the route has no such policy."""
    if access is None:
        return None
    headers = scope["headers"]
    query = None
    credentials = access.credentials
    if credentials is not None and credentials.mode in KEY_MODES:
        key, rest = split_api_key(scope.get("query_string") or b"")
        if key is not None:
            query = rest
            if presented_key(headers)[0] is None:  # a key in a header field wins
                headers = [*headers, (API_KEY_HEADER, key)]
    principal, decision = await access.admit(headers, client)
    return Admission(access, principal, decision.headers() if decision is not None else [], query)


def split_api_key(query: bytes) -> tuple[bytes | None, bytes]:
    """The `api_key` parameter of a query string (percent-decoded; b"" when it is given twice, which reads as a
    malformed key) and the query without it, every other parameter as the client sent it."""
    if not query:
        return None, query
    key: bytes | None = None
    kept: list[bytes] = []
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if unquote_to_bytes(name) != API_KEY_PARAM:
            kept.append(part)
        else:
            key = b"" if key is not None else unquote_to_bytes(value.replace(b"+", b" ")).strip()
    return key, b"&".join(kept)


@dataclass(slots=True)
class Admission:
    """An admitted handshake: the principal whose headers (claims, X-Consumer-Name) go to the backend, the
    fields for the 101, and the query to forward when the key came in it (None: the client's, unchanged)."""

    access: RouteAccess
    principal: Principal | None
    answer_fields: Headers
    query: bytes | None = None

    def upstream_fields(self, fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The backend's handshake fields as the HTTP proxy sends them (RouteAccess.upstream_headers): without
        the client's copies of claim headers and X-Consumer-Name and without the API key, plus the principal's."""
        if self.principal is None:
            return fields
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields]
        sent = self.access.upstream_headers(raw, self.principal)
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in sent]


def handshake_error(exc: BaseException, label: str, timeout: float) -> GatewayError | None:
    """The gateway error for a failed upstream handshake, or None for an exception that is not one."""
    if isinstance(exc, TimeoutError):
        return UpstreamConnectTimeout(label, timeout)
    if isinstance(exc, InvalidStatus):
        response = exc.response
        kept: Headers = []
        if 400 <= response.status_code < 500:
            kept = [(name.lower().encode(), value.encode("latin-1", "replace"))
                    for name, value in response.headers.raw_items() if name.lower() in _REJECTION_KEPT]
        return UpgradeRejected(label, response.status_code, kept)
    if isinstance(exc, ssl.SSLError):
        return UpstreamRefused(label, f"TLS handshake failed ({exc.reason or exc})")
    if isinstance(exc, socket.gaierror):
        return UpstreamNameNotResolved(label, exc.strerror or str(exc) or "name not known")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamRefused(label)
    if isinstance(exc, OSError):
        return UpstreamRefused(label, exc.strerror or str(exc) or type(exc).__name__)
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError | ConnectionError):
        return UpstreamReset(label, "during the WebSocket handshake")
    if isinstance(exc, ConnectionClosed):
        return UpstreamReset(label, "during the WebSocket handshake")
    if isinstance(exc, InvalidHandshake | SecurityError | InvalidURI):
        return InvalidUpgrade(label, str(exc) or type(exc).__name__)
    return None
