"""The DNS forwarder: UDP and TCP listeners, the cache in front, the route table's resolvers behind."""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from protocols.dns import wire
from protocols.dns.cache import CacheKey, DnsCache
from protocols.dns.resolvers import Resolver, ResolverPool, resolvers_from_table
from protocols.dns.upstream import ReplyCounters, ResolverFailure, exchange
from protocols.dns.wire import Query, Unparseable
from protocols.table import LiveTable, RouteTable

log = logging.getLogger(__name__)

_TCP_BIND_ATTEMPTS = 10
_NOT_YET = object()


@dataclass(frozen=True, slots=True)
class DnsOptions:
    """How the forwarder behaves; every default suits a resolver on the same network."""

    timeout: float = 2.0  # per resolver and attempt (UDP, then TCP when truncated)
    hold_down: float = 30.0  # seconds a resolver that timed out or refused is tried only as a last resort
    max_entries: int = 10_000
    min_ttl: int = 0
    max_ttl: int = 3600
    max_negative_ttl: int = 900
    edns_payload: int = 1232  # what we advertise to clients (the DNS flag day 2020 value)
    max_udp_payload: int = 4096  # the most we send in one datagram, whatever the client advertises
    max_pending: int = 1000  # queries waiting for a resolver at once; more get SERVFAIL at once
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 256
    max_tcp_queries: int = 10_000  # per connection, then it is closed


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer for one client: the wire bytes, whether the cache gave it, and its smallest TTL (for HTTP
    Cache-Control)."""

    wire: bytes
    cached: bool = False
    ttl: int = 0


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, forwarder: DnsForwarder) -> None:
        self.forwarder = forwarder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport, but it has its methods.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.forwarder.on_datagram(self.transport, data, addr)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error about an answer we sent to a client that left: nothing to do.
        log.debug("DNS UDP listener: %s", exc)


class DnsForwarder:
    """Answers DNS queries from its cache or from the resolvers of the route table's dns routes.

    Pure asyncio, no Django: give it the LiveTable the process serves from (resolvers follow table swaps; its
    health overlay applies), with a `source` that answers the resolvers of the table served now (the data
    plane's plan) instead of computing them from the table, or a fixed list of resolvers.
    `clock` drives TTLs and hold-downs, so tests move time instead of sleeping.
    One instance belongs to one event loop.
    """

    def __init__(self, state: LiveTable | None = None, *, resolvers: Sequence[Resolver] | None = None,
                 source: Callable[[], tuple[Resolver, ...]] | None = None, options: DnsOptions | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if state is None and resolvers is None and source is None:
            raise ValueError("DnsForwarder needs a LiveTable, a source of resolvers or a list of resolvers")
        self.options = options = options or DnsOptions()
        self.state = state
        self.cache = DnsCache(options.max_entries, min_ttl=options.min_ttl, max_ttl=options.max_ttl,
                              max_negative_ttl=options.max_negative_ttl, clock=clock)
        self.pool = ResolverPool(options.hold_down, clock)
        self.clock = clock
        self.counters = ReplyCounters()
        self.malformed = 0
        self.dropped = 0
        self.servfail = 0
        self._fixed = tuple(resolvers) if resolvers is not None else None
        self._source = source
        self._table: RouteTable | None = None
        self._resolvers: tuple[Resolver, ...] = ()
        self._warned_about: object = _NOT_YET
        self._pending: dict[tuple[CacheKey, bool], asyncio.Future[bytes | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # --- resolvers ----------------------------------------------------------------------------------------
    def resolvers(self) -> tuple[Resolver, ...]:
        """The resolvers of the table served right now (recomputed only when the table is swapped)."""
        if self._fixed is not None:
            return self._fixed
        if self._source is not None:
            return self._source()
        assert self.state is not None
        table = self.state.table
        if table is not self._table:
            self._resolvers = resolvers_from_table(table)
            self._table = table
        return self._resolvers

    # --- answering ----------------------------------------------------------------------------------------
    def udp_limit(self, query: Query) -> int:
        """The largest UDP answer this client takes: 512 without EDNS, else its advertised size (RFC 6891)."""
        if query.edns_payload is None:
            return 512
        return min(max(512, query.edns_payload), self.options.max_udp_payload)

    def from_cache(self, query: Query) -> Reply | None:
        entry = self.cache.get(query.key)
        if entry is None:
            return None
        answer, ttl = entry.render(query, self.clock(), self.options.edns_payload)
        return Reply(answer, True, ttl)

    async def resolve(self, data: bytes, *, max_size: int = wire.MAX_MESSAGE) -> Reply | None:
        """The answer to one query message (`max_size`: 65535 over TCP and HTTPS, the client's limit over UDP).

        A malformed query gets FORMERR (or NOTIMP for other opcodes); None when nothing is to be sent back:
        too short for a header, or not a query.
        """
        try:
            query = wire.parse_query(data)
        except Unparseable as exc:
            return self._unparseable(exc)
        return await self.answer(query, data, max_size)

    async def answer(self, query: Query, data: bytes, max_size: int = wire.MAX_MESSAGE) -> Reply:
        """The answer to a parsed query: from the cache, else from a resolver, cut to `max_size` with TC."""
        reply = self.from_cache(query)
        if reply is None:
            reply = await self._forward(query, data)
        return self._fit(reply, query, max_size)

    def _fit(self, reply: Reply, query: Query, max_size: int) -> Reply:
        if len(reply.wire) > max_size:
            return Reply(wire.truncated(reply.wire, query, self.options.edns_payload), reply.cached, reply.ttl)
        return reply

    def _unparseable(self, exc: Unparseable) -> Reply | None:
        if exc.reply is None:
            self.dropped += 1
            return None
        self.malformed += 1
        return Reply(exc.reply)

    async def _forward(self, query: Query, data: bytes) -> Reply:
        """Ask the resolvers; identical queries in flight share one upstream exchange."""
        pending_key = (query.key, query.edns_payload is not None)
        shared = self._pending.get(pending_key)
        if shared is not None:
            answer = await asyncio.shield(shared)
        elif len(self._pending) >= self.options.max_pending:
            answer = None
        else:
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self._pending[pending_key] = future
            try:
                answer = await self._ask_resolvers(query, data)
                future.set_result(answer)
            finally:
                if not future.done():
                    future.set_result(None)
                del self._pending[pending_key]
        if answer is None:
            self.servfail += 1
            return Reply(wire.servfail(query, self.options.edns_payload))
        return self._reply_from_upstream(query, answer)

    def _reply_from_upstream(self, query: Query, answer: bytes) -> Reply:
        entry = self.cache.entry_for(query, answer)
        if entry is not None:
            self.cache.put(query.key, entry)
            rendered, ttl = entry.render(query, self.clock(), self.options.edns_payload)
            return Reply(rendered, False, ttl)
        # Not cacheable (SERVFAIL, REFUSED, no SOA...): relayed as the resolver sent it, with the client's id.
        return Reply(bytes(wire.with_client_header(answer, query)), False, wire.min_ttl(answer))

    async def _ask_resolvers(self, query: Query, data: bytes) -> bytes | None:
        """The first usable answer: a resolver that fails or answers REFUSED is held down and the next one
        asked; SERVFAIL moves on too (without holding down: it may be about this name only). None when no
        resolver answered at all."""
        resolvers = self.resolvers()
        if not resolvers:
            if self._warned_about is not resolvers:
                self._warned_about = resolvers  # once per table (each has its own tuple), not once per query
                log.warning("DNS queries get SERVFAIL: no enabled dns route has a resolver")
            return None
        health = self.state.health if self.state is not None else None
        last: bytes | None = None
        for resolver in self.pool.order(resolvers, health):
            try:
                answer = await exchange(resolver, data, query, self.options.timeout, self.counters)
            except ResolverFailure as exc:
                log.info("%s; trying the next resolver", exc)
                self.pool.mark_failed(resolver)
                continue
            rcode = struct.unpack_from(">H", answer, 2)[0] & wire.RCODE
            if rcode == wire.REFUSED:
                self.pool.mark_failed(resolver)
                last = answer
                continue
            if rcode == wire.SERVFAIL:
                last = answer
                continue
            self.pool.mark_ok(resolver)
            return answer
        return last

    # --- listeners ----------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 5353, *, reuse_port: bool = False) -> int:
        """Listen on UDP and TCP `host:port` (port 0: one free port for both); returns the port."""
        udp, tcp = bind_dns_sockets(host, port, reuse_port=reuse_port)
        await self.start_sockets(udp, tcp)
        return self.port

    async def start_sockets(self, udp: socket.socket, tcp: socket.socket) -> None:
        """Serve on sockets bound elsewhere (bind_dns_sockets in a parent that forks workers); several
        processes may serve the same pair, the kernel hands each datagram and connection to one of them."""
        loop = asyncio.get_running_loop()
        transport, _protocol = await loop.create_datagram_endpoint(lambda: _UdpListener(self), sock=udp)
        server = await asyncio.start_server(self._serve_tcp, sock=tcp)
        self._udp.append(transport)
        self._tcp.append(server)
        self.port = udp.getsockname()[1]

    async def close(self) -> None:
        """Stop listening, drop open TCP connections and cancel queries still waiting for a resolver."""
        for transport in self._udp:
            transport.close()
        for server in self._tcp:
            server.close()
        for writer in list(self._tcp_writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._tcp:
            await server.wait_closed()
        self._udp.clear()
        self._tcp.clear()

    def on_datagram(self, transport: asyncio.DatagramTransport, data: bytes, addr: Any) -> None:
        """One UDP query: a cache hit is answered right here, a miss in a task of its own."""
        try:
            query = wire.parse_query(data)
        except Unparseable as exc:
            reply = self._unparseable(exc)
            if reply is not None:
                transport.sendto(reply.wire, addr)
            return
        limit = self.udp_limit(query)
        cached = self.from_cache(query)
        if cached is not None:
            transport.sendto(self._fit(cached, query, limit).wire, addr)
            return
        if len(self._tasks) >= self.options.max_pending:
            self.servfail += 1
            transport.sendto(wire.servfail(query, self.options.edns_payload), addr)
            return
        task = asyncio.get_running_loop().create_task(self._answer_datagram(transport, query, data, addr, limit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_datagram(self, transport: asyncio.DatagramTransport, query: Query, data: bytes, addr: Any,
                               limit: int) -> None:
        try:
            reply = self._fit(await self._forward(query, data), query, limit)
        except Exception:  # the boundary of a task nobody awaits: log it, the listener goes on
            log.exception("DNS forwarder failed to answer a UDP query for %r", query.qname)
            reply = Reply(wire.servfail(query, self.options.edns_payload))
        if not transport.is_closing():
            transport.sendto(reply.wire, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One TCP client: length-prefixed queries answered in order until it closes, idles or has asked
        `max_tcp_queries`."""
        if len(self._tcp_writers) >= self.options.max_tcp_connections:
            writer.close()
            return
        self._tcp_writers.add(writer)
        try:
            for _ in range(self.options.max_tcp_queries):
                try:
                    async with asyncio.timeout(self.options.tcp_idle_timeout):
                        size = struct.unpack(">H", await reader.readexactly(2))[0]
                        data = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, TimeoutError, OSError):
                    return
                try:
                    reply = await self.resolve(data)
                except Exception:  # the boundary of a connection task: log it and drop the connection
                    log.exception("DNS forwarder failed to answer a TCP query")
                    return
                if reply is None:
                    continue
                writer.write(struct.pack(">H", len(reply.wire)) + reply.wire)
                try:
                    await writer.drain()
                except OSError:
                    return
        finally:
            self._tcp_writers.discard(writer)
            writer.close()


def bind_dns_sockets(host: str, port: int, *, reuse_port: bool = False) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket on the same `host:port` (port 0: one port free for both), non-blocking.

    `reuse_port` sets SO_REUSEPORT, for processes that each bind their own pair on one port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(_TCP_BIND_ATTEMPTS):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            udp.bind((host, port))
            bound = udp.getsockname()[1]
            tcp.bind((host, bound))
            tcp.listen(128)
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue  # the kernel gave a UDP port whose TCP twin is taken: try another
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError(f"no port free for both UDP and TCP on {host} after {_TCP_BIND_ATTEMPTS} attempts")
