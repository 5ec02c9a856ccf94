"""One query to one upstream resolver, over UDP (TCP when the answer is truncated), safe against forged replies.

Each UDP attempt gets a fresh random id (16 bits from the OS CSPRNG) and a fresh socket connected to the
resolver, so its source port is a random ephemeral one and the kernel drops datagrams from any other address
or port. A datagram that still does not carry our id, the QR bit and our question (name, type and class,
compared case-insensitively) is ignored and counted, and we keep waiting for the real answer until the
timeout (RFC 5452).
"""
from __future__ import annotations

import asyncio
import secrets
import struct

from protocols.dns import wire
from protocols.dns.resolvers import Resolver
from protocols.dns.wire import Query


class ResolverFailure(Exception):
    """The resolver gave no usable answer; the forwarder tries the next one and holds this one down."""

    def __init__(self, resolver: Resolver, reason: str) -> None:
        super().__init__(f"resolver {resolver.label}: {reason}")
        self.resolver = resolver


class ResolverTimeout(ResolverFailure):
    """No matching answer within the timeout (a silent resolver, or only forged replies)."""


class ResolverRefused(ResolverFailure):
    """The resolver's port is closed (ICMP port unreachable, TCP RST) or it cannot be reached."""


class ResolverBadReply(ResolverFailure):
    """Over TCP, an answer that does not match the query, or a connection closed mid-answer."""


class ReplyCounters:
    """What the exchanges saw, for tests and metrics: datagrams ignored for not matching the query sent."""

    __slots__ = ("ignored", "udp_queries", "tcp_queries")

    def __init__(self) -> None:
        self.ignored = 0
        self.udp_queries = 0
        self.tcp_queries = 0


class _AnswerWaiter(asyncio.DatagramProtocol):
    """Receives on one connected socket; resolves `answer` with the first datagram that answers our query."""

    def __init__(self, qid: int, query: Query, counters: ReplyCounters) -> None:
        self.qid = qid
        self.query = query
        self.counters = counters
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.answer.done():
            return
        if (addr[0], addr[1]) == self.peer and wire.answers_query(data, self.qid, self.query):
            self.answer.set_result(data)
        else:
            self.counters.ignored += 1

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP port unreachable arrives here as ConnectionRefusedError.
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionResetError("socket closed"))


def _with_id(query_wire: bytes, qid: int) -> bytes:
    return struct.pack(">H", qid) + query_wire[2:]


async def udp_exchange(resolver: Resolver, query_wire: bytes, query: Query, timeout: float,
                       counters: ReplyCounters) -> bytes:
    """Send the query with a new id from a new socket; the first matching answer, or ResolverFailure."""
    loop = asyncio.get_running_loop()
    qid = secrets.randbits(16)
    try:
        transport, waiter = await loop.create_datagram_endpoint(
            lambda: _AnswerWaiter(qid, query, counters), remote_addr=(resolver.host, resolver.port)
        )
    except OSError as exc:
        raise ResolverRefused(resolver, f"cannot send: {exc}") from None
    try:
        counters.udp_queries += 1
        transport.sendto(_with_id(query_wire, qid))
        return await asyncio.wait_for(waiter.answer, timeout)
    except TimeoutError:
        raise ResolverTimeout(resolver, f"no answer within {timeout:g} s over UDP") from None
    except OSError as exc:
        raise ResolverRefused(resolver, f"UDP: {exc.strerror or exc}") from None
    finally:
        transport.close()


async def tcp_exchange(resolver: Resolver, query_wire: bytes, query: Query, timeout: float,
                       counters: ReplyCounters) -> bytes:
    """The same over a new TCP connection (RFC 7766 framing); the whole exchange must fit in `timeout`."""
    qid = secrets.randbits(16)
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_connection(resolver.host, resolver.port)
            except OSError as exc:
                raise ResolverRefused(resolver, f"TCP connect: {exc.strerror or exc}") from None
            try:
                counters.tcp_queries += 1
                message = _with_id(query_wire, qid)
                writer.write(struct.pack(">H", len(message)) + message)
                await writer.drain()
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                answer = await reader.readexactly(size)
            except (asyncio.IncompleteReadError, OSError) as exc:
                raise ResolverBadReply(resolver, f"TCP connection failed mid-answer: {exc}") from None
            finally:
                writer.close()
    except TimeoutError:
        raise ResolverTimeout(resolver, f"no answer within {timeout:g} s over TCP") from None
    if not wire.answers_query(answer, qid, query):
        counters.ignored += 1
        raise ResolverBadReply(resolver, "TCP answer does not match the query")
    return answer


async def exchange(resolver: Resolver, query_wire: bytes, query: Query, timeout: float,
                   counters: ReplyCounters) -> bytes:
    """UDP first; a truncated answer is asked again over TCP (RFC 7766 section 5)."""
    answer = await udp_exchange(resolver, query_wire, query, timeout, counters)
    if struct.unpack_from(">H", answer, 2)[0] & wire.TC:
        answer = await tcp_exchange(resolver, query_wire, query, timeout, counters)
    return answer
