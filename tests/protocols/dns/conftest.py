"""Fixtures of the DNS forwarder tests: a zone server on loopback, a hand-moved clock, the forwarder in front."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dns.message
import dns.query
import pytest

from tests.protocols.dns.servers import Clock, ForwarderThread, ZoneServer, forwarder_to


@pytest.fixture
def upstream() -> Iterator[ZoneServer]:
    with ZoneServer() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def running(upstream: ZoneServer, clock: Clock) -> Iterator[ForwarderThread]:
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock)) as forwarder:
        yield forwarder


def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False, qid: int | None = None,
        timeout: float = 5.0, **query: Any) -> dns.message.Message:
    """One query to 127.0.0.1:`port` with dnspython (UDP, or TCP); `query` goes to make_query (use_edns...)."""
    message = dns.message.make_query(name, rdtype, **query)
    if qid is not None:
        message.id = qid
    if tcp:
        return dns.query.tcp(message, "127.0.0.1", port=port, timeout=timeout)
    return dns.query.udp(message, "127.0.0.1", port=port, timeout=timeout)
