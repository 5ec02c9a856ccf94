"""IP allow and deny lists (addresses and CIDR ranges) checked against the client address the proxy derived.

The client address is the one the proxy trusts: the peer, or the X-Forwarded-For entry a trusted proxy vouched
for (protocols.http.headers.client_address), never the raw header. Deny wins over allow; with an allow list,
every address not on it is refused, including one that cannot be parsed (fail closed).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from protocols.guards.config import BlockReader
from protocols.guards.refusals import ClientForbidden

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

KEYS = frozenset({"enabled", "allow", "deny"})
MAX_ENTRIES = 10_000
_CACHE_LIMIT = 4096


def parse_network(text: str) -> Network:
    """An address or CIDR range; host bits are ignored (`10.0.0.1/8` is `10.0.0.0/8`). Raises ValueError."""
    network = ipaddress.ip_network(text.strip(), strict=False)
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:
        # ::ffff:10.0.0.0/104 is the IPv4 range 10.0.0.0/8 as an IPv6 listener reports it.
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


def client_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address as the lists compare it (IPv4-mapped IPv6 as IPv4, a zone id dropped), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class IpRules:
    """A compiled `ip_rules` block; `check` answers from a dict after an address's first request."""

    __slots__ = ("allow", "deny", "_known")

    def __init__(self, allow: tuple[Network, ...] = (), deny: tuple[Network, ...] = ()) -> None:
        self.allow = allow
        self.deny = deny
        self._known: dict[str, bool] = {}

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> IpRules | None:
        """The compiled block, or None when it is absent, disabled or empty; raises BlockError."""
        reader = BlockReader(block, KEYS)
        enabled = reader.boolean("enabled", True)
        lists: dict[str, tuple[Network, ...]] = {}
        for key in ("allow", "deny"):
            found: list[Network] = []
            for index, entry in enumerate(reader.strings(key, [], limit=MAX_ENTRIES) or []):
                try:
                    found.append(parse_network(entry))
                except ValueError:
                    reader.add(f"{key}[{index}]", f"'{entry}' is not an IP address or CIDR range like 10.0.0.0/8.")
            lists[key] = tuple(found)
        reader.finish()
        if not enabled or not (lists["allow"] or lists["deny"]):
            return None
        return cls(lists["allow"], lists["deny"])

    def permits(self, address: str) -> bool:
        known = self._known.get(address)
        if known is None:
            known = self._decide(address)
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known[address] = known
        return known

    def _decide(self, address: str) -> bool:
        ip = client_ip(address)
        if ip is None:
            return not self.allow
        if any(ip in network for network in self.deny):
            return False
        return not self.allow or any(ip in network for network in self.allow)

    def check(self, address: str) -> None:
        """Raises ClientForbidden (403) when the client's address is not permitted."""
        if not self.permits(address):
            raise ClientForbidden()
