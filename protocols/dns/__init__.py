"""The DNS forwarder: UDP/TCP listeners, a cache, the route table's resolvers, and DNS over HTTPS."""
from __future__ import annotations

from protocols.dns.cache import DnsCache
from protocols.dns.doh import DOH_PATHS, doh_app, is_doh_path, make_doh_app
from protocols.dns.forwarder import DnsForwarder, DnsOptions, Reply, bind_dns_sockets
from protocols.dns.resolvers import Resolver, ResolverPool, resolvers_from_table

__all__ = [
    "DOH_PATHS", "DnsCache", "DnsForwarder", "DnsOptions", "Reply", "Resolver", "ResolverPool",
    "bind_dns_sockets", "doh_app", "is_doh_path", "make_doh_app", "resolvers_from_table",
]
