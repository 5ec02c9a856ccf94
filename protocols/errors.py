"""Rusta's documented gateway errors: every failure the proxy answers for becomes one of these, in one place."""
from __future__ import annotations

import json
from typing import Any

Headers = list[tuple[bytes, bytes]]

_JSON_HEADERS: Headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


class GatewayError(Exception):
    """An answer the gateway gives in place of the backend's: an HTTP status, a stable `type`, a human message.

    `type` is part of the public contract (clients switch on it); `message` names the cause and, for upstream
    failures, the backend as host:port, never credentials. `details`, when an error has them, are more fields of
    the JSON body (an abuse verdict's reason and id).
    """

    details: dict[str, Any] | None = None

    def __init__(self, status: int, type: str, message: str, headers: Headers | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers: Headers = headers or []

    def body(self, request_id: str) -> bytes:
        fields: dict[str, Any] = {"error": self.message, "type": self.type, "request_id": request_id}
        if self.details:
            fields.update(self.details)
        return json.dumps(fields).encode()

    def response(self, request_id: str) -> tuple[int, Headers, bytes]:
        """Status, headers and body of the JSON answer; the caller adds X-Request-ID."""
        payload = self.body(request_id)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode()), *self.headers]
        return self.status, headers, payload


class NoRoute(GatewayError):
    """404: no route matches the method, host and path."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(404, "route_not_found", f"No route matches {method} {path}.")


class MethodNotAllowed(GatewayError):
    """405: a route matches the path but not the method; `Allow` lists the methods that would match."""

    def __init__(self, method: str, path: str, allow: str) -> None:
        super().__init__(
            405, "method_not_allowed", f"{method} is not allowed on {path}; allowed: {allow}.",
            [(b"allow", allow.encode())],
        )
        self.allow = allow


class NoHealthyBackend(GatewayError):
    """503: the route has no backend that can take the request right now; `Retry-After` says when to come back.

    The message names the cause: no backend configured, or how many are marked down by the active health checks
    and how many are behind an open circuit breaker.
    """

    def __init__(self, route_name: str, retry_after: int = 5, *, backends: int = 0, unhealthy: int = 0,
                 open_breakers: int = 0) -> None:
        if not backends:
            message = f"Route '{route_name}' has no backend."
        elif backends == 1:
            cause = "is unhealthy" if unhealthy else "has its circuit breaker open"
            message = f"The only backend of route '{route_name}' {cause}."
        else:
            message = (
                f"All {backends} backends of route '{route_name}' are unhealthy or their circuit breakers are open "
                f"({unhealthy} unhealthy, {open_breakers} with an open breaker)."
            )
        super().__init__(503, "no_backend", message, [(b"retry-after", str(retry_after).encode())])
        self.retry_after = retry_after


class UpstreamError(GatewayError):
    """A backend failed the exchange: it counts against the backend's circuit breaker, and before the response
    head it may be retried (the route's `retry_on_connection_error`)."""


class UpstreamRefused(UpstreamError):
    """502: the backend could not be connected to (refused, unreachable, TLS handshake failed)."""

    def __init__(self, backend: str, reason: str = "connection refused") -> None:
        super().__init__(502, "upstream_connect_refused", f"Could not connect to backend {backend}: {reason}.")


class UpstreamNameNotResolved(UpstreamRefused):
    """502: the backend's host name did not resolve, so there was nothing to connect to.

    A connect failure like a refusal (retried, counted against the breaker), with its own type because the fix
    is different: a typo in the route or a DNS problem, not a backend that is down.
    """

    def __init__(self, backend: str, reason: str = "name not known") -> None:
        GatewayError.__init__(
            self, 502, "upstream_name_not_resolved",
            f"Could not connect to backend {backend}: its host name did not resolve ({reason}).",
        )


class UpstreamReset(UpstreamError):
    """502: the backend closed or reset the connection before the response was complete."""

    def __init__(self, backend: str, detail: str = "before sending a response") -> None:
        super().__init__(502, "upstream_reset", f"Backend {backend} closed the connection {detail}.")


class UpstreamInvalidResponse(UpstreamError):
    """502: the backend answered with something that is not valid HTTP/1.1."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(
            502, "upstream_invalid_response", f"Backend {backend} sent an invalid HTTP response: {reason}."
        )


class UpstreamConnectTimeout(UpstreamError):
    """504: connecting to the backend took longer than the route's connect timeout."""

    def __init__(self, backend: str, timeout: float) -> None:
        super().__init__(
            504, "upstream_connect_timeout", f"Connecting to backend {backend} timed out after {timeout:g} s."
        )


class UpstreamTimeout(UpstreamError):
    """504: the backend did not send the response head, or the next piece of body, within the read timeout."""

    def __init__(self, backend: str, timeout: float, waiting_for: str = "the response") -> None:
        super().__init__(
            504, "upstream_timeout", f"Backend {backend} did not send {waiting_for} within {timeout:g} s."
        )


class UpstreamTotalTimeout(UpstreamTimeout):
    """504: the whole exchange (every attempt, the waits between them and the body) outlasted the route's
    total timeout; the backend is cut off, mid-body if need be."""

    def __init__(self, backend: str, timeout: float) -> None:
        GatewayError.__init__(
            self, 504, "upstream_timeout",
            f"Backend {backend} did not complete the exchange within the route's total timeout of {timeout:g} s.",
        )


class UpgradeRequired(GatewayError):
    """426: a WebSocket route was hit by a plain HTTP request (RFC 9110 15.5.22 requires the Upgrade field)."""

    def __init__(self, route_name: str) -> None:
        super().__init__(
            426, "upgrade_required", f"Route '{route_name}' is a WebSocket route; send a WebSocket upgrade request.",
            [(b"upgrade", b"websocket"), (b"connection", b"upgrade")],
        )


class Http2Required(GatewayError):
    """426: a gRPC route was called over HTTP/1.1 (or a listener that cannot send trailers): gRPC needs HTTP/2."""

    def __init__(self, route_name: str, tls: bool) -> None:
        super().__init__(
            426, "http2_required",
            f"Route '{route_name}' is a gRPC route; call it over HTTP/2 (TLS with ALPN h2, or cleartext with prior "
            "knowledge).",
            [(b"upgrade", b"h2" if tls else b"h2c")],
        )


class GrpcContentTypeRequired(GatewayError):
    """415: an HTTP/2 request to a gRPC route without a gRPC content type (as gRPC servers answer it)."""

    def __init__(self, route_name: str) -> None:
        super().__init__(
            415, "unsupported_media_type",
            f"Route '{route_name}' is a gRPC route; send content-type application/grpc (or application/grpc+proto).",
        )


class ProtocolNotSupported(GatewayError):
    """501: the route's protocol (dns, ftp) is not served on the HTTP listener yet."""

    def __init__(self, route_name: str, protocol: str) -> None:
        super().__init__(
            501, "protocol_not_supported",
            f"Route '{route_name}' uses protocol '{protocol}', which the HTTP listener does not serve.",
        )


class ClientCertificateRequired(GatewayError):
    """401: the route requires a client certificate and the connection presented none."""

    def __init__(self, route_name: str) -> None:
        super().__init__(401, "client_certificate_required",
                         f"Route '{route_name}' requires a TLS client certificate; none was presented.")


class ClientCertificateUntrusted(GatewayError):
    """403: the client certificate was not issued by a CA this route accepts (another route's CA did)."""

    def __init__(self, route_name: str) -> None:
        super().__init__(403, "client_certificate_untrusted",
                         f"The TLS client certificate was not issued by a CA that route '{route_name}' accepts.")


class HttpsRedirect(GatewayError):
    """301, 302, 307 or 308: the route is served over HTTPS only (its `tls` block's `redirect_http`); `Location`
    is the same URL on the TLS listener."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(status, "https_redirect", f"This resource is served over HTTPS: {location}",
                         [(b"location", location.encode("latin-1"))])
        self.location = location


def verdict_url(verdict_id: int) -> str:
    """Where the admin API explains a verdict (the admin listener's path)."""
    return f"/api/verdicts/{verdict_id}/"


class ClientBlocked(GatewayError):
    """429: an abuse verdict blocks this client on this route until it expires or is lifted (a route's `abuse`
    block in `enforce` mode; protocols.abuse.sanctions). The body names the reason (the verdict's kind and its
    main deviating feature), the verdict's id and where the API explains it; `Retry-After` is the time left,
    `X-Rusta-Verdict` the id."""

    def __init__(self, route_name: str, verdict_id: int, retry_after_s: int, reason: dict[str, Any]) -> None:
        feature = reason.get("feature")
        why = f"{reason['kind']}, {feature}" if feature else reason["kind"]
        super().__init__(
            429, "client_blocked",
            f"This client is blocked on route '{route_name}' by verdict {verdict_id} ({why}); retry in "
            f"{retry_after_s} s.",
            [(b"retry-after", b"%d" % retry_after_s), (b"x-rusta-verdict", b"%d" % verdict_id)])
        self.details = {"reason": reason, "verdict_id": verdict_id, "verdict": verdict_url(verdict_id)}


class InternalGatewayError(GatewayError):
    """502: an unexpected failure inside the gateway; the traceback is logged. Rusta never answers 500."""

    def __init__(self, message: str = "The gateway failed to handle the request.") -> None:
        super().__init__(502, "gateway_error", message)


class ClientDisconnected(Exception):
    """The client went away before the exchange finished; there is nobody left to answer."""


def protocol_error(route_name: str, protocol: str) -> GatewayError:
    """The error for a request that reached a route whose protocol is not plain HTTP."""
    if protocol == "websocket":
        return UpgradeRequired(route_name)
    return ProtocolNotSupported(route_name, protocol)
