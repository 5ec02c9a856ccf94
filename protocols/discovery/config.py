"""A backend's `discovery` key compiled into a DiscoverySpec, every problem refused at its path."""
from __future__ import annotations

import ipaddress
from typing import Any

from protocols.block_errors import BlockError, Issues
from protocols.table import DiscoverySpec

KINDS = ("a", "srv")
KEYS = ("type", "interval_s", "resolver")
DEFAULT_INTERVAL_S = DiscoverySpec("a").interval_s  # what a key left out takes: the spec's own default
MIN_INTERVAL_S = 0.5
MAX_INTERVAL_S = 3600.0
DNS_PORT = 53


def discovery_spec(value: Any) -> DiscoverySpec | None:
    """The compiled `discovery` key of one backend (None: the host is used as it is); BlockError with each
    problem at its path inside the key (`interval_s`, "" for the key itself)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BlockError.at("", 'Must be an object like {"type": "srv"}, or null.')
    issues = Issues()
    for key in value:
        if key not in KEYS:
            issues.add(str(key), f"Unknown key; discovery knows {', '.join(sorted(KEYS))}.")
    kind = value.get("type")
    if kind not in KINDS:
        issues.add("type", 'Must be "a" (every A and AAAA address of the host, at the backend\'s port) or "srv" '
                           "(the host is an SRV name, like _http._tcp.api.internal).")
    interval = value.get("interval_s")
    if interval is None:
        interval = DEFAULT_INTERVAL_S
    elif isinstance(interval, bool) or not isinstance(interval, int | float) \
            or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        issues.add("interval_s", f"Must be a number of seconds from {MIN_INTERVAL_S:g} to {MAX_INTERVAL_S:g}.")
    resolver = value.get("resolver")
    nameserver = None if resolver is None else parse_nameserver(resolver)
    if resolver is not None and nameserver is None:
        issues.add("resolver", "Must be null (the system's resolver) or an IP address with an optional port, like "
                               '"10.0.0.2", "127.0.0.1:8600" or "[fd00::53]:5353".')
    issues.raise_if_any()
    return DiscoverySpec(str(kind), float(interval), nameserver)


def parse_nameserver(text: Any) -> tuple[str, int] | None:
    """`10.0.0.2` -> ("10.0.0.2", 53), `127.0.0.1:8600`, `::1`, `[::1]:5353`; None when it is not one. A name is
    not accepted: resolving the resolver would need a resolver."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    host, port = text, DNS_PORT
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        if rest:
            if not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            return None
        port = int(digits)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 1 <= port <= 65535:
        return None
    return str(address), port


def nameserver_text(nameserver: tuple[str, int]) -> str:
    """How a log line names a resolver: `127.0.0.1:8600`, `[::1]:53`."""
    host, port = nameserver
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
