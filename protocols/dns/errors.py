"""The gateway errors of the DNS-over-HTTP endpoints, in Rusta's JSON error shape (protocols/errors.py)."""
from __future__ import annotations

from protocols.errors import GatewayError


class InvalidDnsRequest(GatewayError):
    """400: the request carries no DNS query we can read (bad base64url, bad hex, bad JSON, malformed message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(400, "invalid_dns_request", f"Invalid DNS request: {reason}.")


class DnsMessageTooLarge(GatewayError):
    """413: the body is larger than the largest DNS message (65,535 bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"The request body exceeds {limit} bytes.")


class UnsupportedDnsMediaType(GatewayError):
    """415: a DNS-over-HTTPS POST whose Content-Type is not application/dns-message (RFC 8484 section 4.1)."""

    def __init__(self, content_type: str) -> None:
        super().__init__(
            415, "unsupported_media_type",
            f"Content-Type '{content_type}' is not supported here; send application/dns-message.",
        )
