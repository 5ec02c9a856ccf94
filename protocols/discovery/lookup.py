"""The DNS side of backend discovery: a name's addresses and an SRV name's services, from a given resolver or the
system's. dnspython's and the socket layer's failures become DiscoveryError here, and only here."""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.resolver
from dns.rdtypes.IN.SRV import SRV

Nameserver = tuple[str, int]
# getaddrinfo's failures by what they say about the name (EAI_NODATA and EAI_ADDRFAMILY exist on glibc only).
_GAI_OUTCOMES = {
    **{code: "empty" for code in (getattr(socket, "EAI_NODATA", None), getattr(socket, "EAI_ADDRFAMILY", None))
       if code is not None},
    socket.EAI_NONAME: "nxdomain",
}


OUTCOMES = ("ok", "nxdomain", "empty", "timeout", "error")  # how a resolution ends, as /metrics counts it


class DiscoveryError(Exception):
    """A name that did not resolve this time; the message says why, `outcome` says how for /metrics: "nxdomain"
    (no such name), "empty" (no records or no usable address), "timeout" (no answer in time) or "error"."""

    def __init__(self, message: str, outcome: str = "error") -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True, slots=True)
class Service:
    """One SRV record (RFC 2782): lower priorities are preferred, weights share the load within one."""

    priority: int
    weight: int
    port: int
    target: str


class Lookup(Protocol):
    """What discovery asks DNS; tests pass their own."""

    async def addresses(self, name: str, resolver: Nameserver | None, timeout: float) -> list[str]:
        """Every IPv4 and IPv6 address of `name`; DiscoveryError when it does not resolve."""
        ...

    async def services(self, name: str, resolver: Nameserver | None, timeout: float) -> list[Service]:
        """The SRV records of `name`; DiscoveryError when it does not resolve."""
        ...


class DnsLookup:
    """Queries a given resolver with dnspython. Without one, addresses come from getaddrinfo (so /etc/hosts and
    the system's resolver answer, as they do for a backend's connections) and SRV records from the resolver
    /etc/resolv.conf names."""

    def __init__(self) -> None:
        self._system: dns.asyncresolver.Resolver | None = None

    async def addresses(self, name: str, resolver: Nameserver | None, timeout: float) -> list[str]:
        if resolver is None:
            return await _getaddrinfo(name, timeout)
        dns_resolver = _resolver_at(resolver)
        answers = await asyncio.gather(_query(dns_resolver, name, "A", timeout),
                                       _query(dns_resolver, name, "AAAA", timeout))
        return [rdata.to_text() for answer in answers for rdata in answer]

    async def services(self, name: str, resolver: Nameserver | None, timeout: float) -> list[Service]:
        dns_resolver = _resolver_at(resolver) if resolver is not None else self._system_resolver()
        answer = await _query(dns_resolver, name, "SRV", timeout)
        return [Service(rdata.priority, rdata.weight, rdata.port, rdata.target.to_text(omit_final_dot=True))
                for rdata in answer if isinstance(rdata, SRV)]

    def _system_resolver(self) -> dns.asyncresolver.Resolver:
        if self._system is None:
            try:
                self._system = dns.asyncresolver.Resolver()
            except dns.exception.DNSException as exc:  # no /etc/resolv.conf, or no nameserver in it
                raise DiscoveryError(f"the system has no resolver configured ({exc})") from exc
        return self._system


def _resolver_at(nameserver: Nameserver) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [nameserver[0]]
    resolver.port = nameserver[1]
    return resolver


async def _query(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str,
                 timeout: float) -> list[dns.rdata.Rdata]:
    """The records of one type (none when the name has others only); DiscoveryError otherwise."""
    try:
        answer = await resolver.resolve(dns.name.from_text(name), rdtype, search=False, lifetime=timeout,
                                        raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN as exc:
        raise DiscoveryError(f"{name} does not exist (NXDOMAIN)", "nxdomain") from exc
    except dns.exception.Timeout as exc:
        raise DiscoveryError(f"no answer for {name} {rdtype} within {timeout:g} s", "timeout") from exc
    except dns.exception.DNSException as exc:  # NoNameservers (SERVFAIL, REFUSED...), malformed names
        raise DiscoveryError(f"{name} {rdtype}: {exc}") from exc
    if answer.rrset is None:
        return []
    return list(answer.rrset)


async def _getaddrinfo(name: str, timeout: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout)
    except TimeoutError as exc:
        raise DiscoveryError(f"no answer for {name} within {timeout:g} s", "timeout") from exc
    except OSError as exc:  # socket.gaierror: no such name, no address, resolver failure
        raise DiscoveryError(f"{name}: {exc.strerror or exc}", _GAI_OUTCOMES.get(exc.errno, "error")) from exc
    return [str(info[4][0]) for info in infos]
