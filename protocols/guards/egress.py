"""Which upstream addresses are link-local or cloud metadata endpoints, refused as backends unless allowed.

A backend at 169.254.169.254 turns the gateway into a reader of the host's cloud credentials (SSRF). The
control plane refuses such backends when they are saved (routes.network_safety); the same test can run on the
address a backend name resolved to, at connect time, which also covers DNS names that point there.
"""
from __future__ import annotations

import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LINK_LOCAL_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local: AWS, GCP, Azure, OpenStack, DigitalOcean metadata
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
)
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    ipaddress.ip_address("fd00:ec2::23"),  # AWS Route 53 resolver over IPv6 (link-local service)
    ipaddress.ip_address("168.63.129.16"),  # Azure WireServer
    ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud (legacy)
})
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com", "metadata.oraclecloud.com",
    "instance-data", "instance-data.ec2.internal", "metadata.packet.net", "metadata.platformequinix.com",
    "metadata.tencentyun.com", "metadata.hetzner.cloud",
})
# NAT64 prefixes embed an IPv4 address in the last 32 bits (RFC 6052).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


def parse_host_address(host: str) -> IPAddress | None:
    """The IP address a host string denotes, as the resolver would read it, or None for a name.

    Besides the usual forms this reads the ones inet_aton accepts (`2852039166`, `0xa9fea9fe`, `0251.0376.0.1`,
    `169.254.43518`), which look like names to a hostname check but connect to an address.
    """
    text = host.strip().strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except (OSError, ValueError):
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in prefix for prefix in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_link_local_address(ip: IPAddress) -> bool:
    """True for link-local and known cloud metadata addresses, also inside IPv4-mapped or NAT64 IPv6 forms."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_link_local_address(embedded)
    return ip in METADATA_ADDRESSES or any(ip in network for network in LINK_LOCAL_NETWORKS)


def link_local_reason(host: str) -> str | None:
    """Why a backend host is a link-local or metadata endpoint, or None when it is not one."""
    ip = parse_host_address(host)
    if ip is not None:
        if is_link_local_address(ip):
            return f"{host} is a link-local or cloud metadata address"
        return None
    name = host.strip().rstrip(".").lower()
    if name in METADATA_NAMES:
        return f"{host} is a cloud metadata host name"
    return None
