"""Backends discovered by DNS: a backend's `discovery` key (A/AAAA addresses, or SRV records) compiled, resolved
off the request path on its interval, and expanded into one balanced backend per address."""
from __future__ import annotations

from protocols.discovery.backends import (
    NOTHING_DISCOVERED,
    BackendDiscovery,
    Discovered,
    Endpoint,
    NameStatus,
    Target,
    target_of,
)
from protocols.discovery.config import KINDS, discovery_spec, parse_nameserver
from protocols.discovery.lookup import OUTCOMES, DiscoveryError, DnsLookup, Lookup, Service

__all__ = [
    "KINDS", "NOTHING_DISCOVERED", "OUTCOMES", "BackendDiscovery", "Discovered", "DiscoveryError", "DnsLookup",
    "Endpoint", "Lookup", "NameStatus", "Service", "Target", "discovery_spec", "parse_nameserver", "target_of",
]
