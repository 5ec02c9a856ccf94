"""The guards' answers: gateway errors with a JSON body (a bad guard block raises
protocols.block_errors.BlockError)."""
from __future__ import annotations

from protocols.errors import GatewayError


class ClientForbidden(GatewayError):
    """403: the client's address is denied by the route's (or the gateway's) `ip_rules`.

    The message does not say which rule matched: the lists are the operator's business, not the client's.
    """

    def __init__(self) -> None:
        super().__init__(403, "client_forbidden", "Requests from your address are not allowed here.")


class CorsRejected(GatewayError):
    """403: a CORS preflight whose origin, method or headers the route's `cors` block does not allow."""

    def __init__(self, reason: str, vary: list[tuple[bytes, bytes]]) -> None:
        super().__init__(403, "cors_rejected", f"CORS preflight refused: {reason}.", list(vary))


class PayloadTooLarge(GatewayError):
    """413: the request body is larger than `limits.max_body_bytes` (by Content-Length, or counted as it came).

    `Connection: close`: the rest of the body is not read, so the connection cannot be reused.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"The request body is larger than {limit} bytes.",
                         [(b"connection", b"close")])
        self.limit = limit


class UriTooLong(GatewayError):
    """414: the request target (path and query) is longer than `limits.max_url_length`."""

    def __init__(self, limit: int) -> None:
        super().__init__(414, "uri_too_long", f"The request target is longer than {limit} characters.")
        self.limit = limit


class HeaderFieldsTooLarge(GatewayError):
    """431: more header fields than `limits.max_header_count`, or more bytes than `limits.max_header_bytes`."""

    def __init__(self, what: str) -> None:
        super().__init__(431, "header_fields_too_large", f"The request header fields are too large: {what}.")
