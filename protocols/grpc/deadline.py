"""A call's deadline: the client's grpc-timeout and the route's total timeout, whichever ends first."""
from __future__ import annotations

from dataclasses import dataclass

_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def parse_timeout(value: bytes) -> float | None:
    """grpc-timeout ("TimeoutValue TimeoutUnit": at most 8 digits and one of H M S m u n) in seconds; None when
    malformed (the call then has no client deadline, as gRPC servers treat it)."""
    digits, unit = value[:-1], value[-1:]
    if not digits or len(digits) > 8 or not digits.isdigit() or unit not in _UNITS:
        return None
    return int(digits) * _UNITS[unit]


def format_timeout(seconds: float) -> bytes:
    """`seconds` as a grpc-timeout value (milliseconds, rounded up, at least 1; in seconds past 8 digits)."""
    millis = max(1, int(seconds * 1000 + 0.999))
    if millis < 100_000_000:
        return b"%dm" % millis
    return b"%dS" % min(99_999_999, int(seconds + 0.999))


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long a call may take (`seconds`, None: no limit) and whether the client set it (`by_client`): a
    deadline the client chose says nothing about the backend, so it never counts against its breaker."""

    seconds: float | None
    by_client: bool


def call_deadline(timeout_field: bytes | None, total_timeout: float) -> Deadline:
    """The sooner of the client's grpc-timeout and the route's total timeout (0: none)."""
    client = parse_timeout(timeout_field) if timeout_field else None
    route = total_timeout if total_timeout > 0 else None
    if client is not None and (route is None or client <= route):
        return Deadline(client, True)
    return Deadline(route, False)
