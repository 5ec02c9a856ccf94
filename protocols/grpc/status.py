"""gRPC status codes, and the one mapping from the gateway's errors (and a backend's HTTP/2 failures) to them.

The backend side follows gRPC's own doc/http-grpc-status-mapping.md: an HTTP status without grpc-status, and a
stream reset (RST_STREAM code), each have the code a gRPC client would have reported talking to it directly.
"""
from __future__ import annotations

from urllib.parse import quote

from protocols.errors import GatewayError
from protocols.upstream.http2 import UpstreamStreamReset

OK = 0
CANCELLED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16

# The gateway's own error types (protocols.errors and the modules that raise GatewayErrors) whose code is not
# what their HTTP status would give.
_BY_TYPE = {
    "route_not_found": UNIMPLEMENTED,
    "method_not_allowed": UNIMPLEMENTED,
    "no_backend": UNAVAILABLE,
    "upstream_connect_refused": UNAVAILABLE,
    "upstream_name_not_resolved": UNAVAILABLE,
    "upstream_reset": UNAVAILABLE,
    "upstream_connect_timeout": UNAVAILABLE,  # nothing was sent: the backend is unreachable, not slow
    "upstream_timeout": DEADLINE_EXCEEDED,
    "upstream_invalid_response": INTERNAL,
    "gateway_error": INTERNAL,
    "route_misconfigured": UNAVAILABLE,
    "payload_too_large": RESOURCE_EXHAUSTED,
}
# Everything else by the HTTP status the gateway would have answered with.
_BY_GATEWAY_STATUS = {
    400: INVALID_ARGUMENT, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: UNIMPLEMENTED, 405: UNIMPLEMENTED,
    408: DEADLINE_EXCEEDED, 413: RESOURCE_EXHAUSTED, 414: RESOURCE_EXHAUSTED, 415: INTERNAL, 426: INTERNAL,
    429: RESOURCE_EXHAUSTED, 431: RESOURCE_EXHAUSTED, 499: CANCELLED, 501: UNIMPLEMENTED, 502: UNAVAILABLE,
    503: UNAVAILABLE, 504: DEADLINE_EXCEEDED,
}
# http-grpc-status-mapping.md: a backend's HTTP status when its answer carries no grpc-status.
_BY_BACKEND_STATUS = {400: INTERNAL, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: UNIMPLEMENTED,
                      429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE, 504: UNAVAILABLE}
# http-grpc-status-mapping.md: RST_STREAM error codes (NO_ERROR to INADEQUATE_SECURITY) as gRPC codes.
_BY_RESET = {0x7: UNAVAILABLE, 0x8: CANCELLED, 0xB: RESOURCE_EXHAUSTED, 0xC: PERMISSION_DENIED}


def code_of(error: GatewayError) -> int:
    """The gRPC status a gRPC client gets for a gateway error."""
    if isinstance(error, UpstreamStreamReset):
        return code_of_reset(error.code)
    code = _BY_TYPE.get(error.type)
    if code is not None:
        return code
    return _BY_GATEWAY_STATUS.get(error.status, INTERNAL if error.status >= 500 else INVALID_ARGUMENT)


def code_of_reset(reset_code: int) -> int:
    """A backend's RST_STREAM error code as the gRPC status."""
    return _BY_RESET.get(reset_code, INTERNAL)


def code_of_http_status(status: int) -> int:
    """A backend's HTTP status, when its answer ended without grpc-status, as the gRPC status."""
    if status == 200:
        return INTERNAL  # a gRPC answer must end with a status: its absence is the backend's fault
    return _BY_BACKEND_STATUS.get(status, UNKNOWN)


def encode_message(message: str) -> bytes:
    """grpc-message's percent-encoding (gRPC's PROTOCOL-HTTP2.md: everything outside 0x20-0x7E, and '%')."""
    return quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode("ascii")


def status_fields(code: int, message: str) -> list[tuple[bytes, bytes]]:
    """grpc-status and, when there is one, grpc-message."""
    fields = [(b"grpc-status", str(code).encode())]
    if message:
        fields.append((b"grpc-message", encode_message(message)))
    return fields
