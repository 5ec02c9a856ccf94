"""A real DNS server on loopback for the forwarder's tests, and the forwarder itself, each in a thread of its own.

ZoneServer answers from a small zone over UDP and TCP on one 127.0.0.1 port, counts every query, and on demand
misbehaves: answers late, never answers, truncates every UDP answer, answers with a fixed rcode, changes the
case of the question, or sends forged replies (wrong id, wrong question, from another port) before the real one.
Its switches are plain attributes, settable from the test thread at any time.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import uvicorn
import uvloop

from protocols.dns import DnsForwarder, DnsOptions, Resolver

T = TypeVar("T")
ORIGIN = dns.name.from_text("example.test.")
POISON = "6.6.6.6"  # the address every forged reply carries; no test answer may ever contain it
SOA = ("ns.example.test. admin.example.test. 1 3600 600 86400 60", 600)  # MINIMUM 60, SOA TTL 600

ZONE: dict[str, list[tuple[str, int, list[str]]]] = {
    "www.example.test.": [("A", 300, ["192.0.2.1"]), ("AAAA", 300, ["2001:db8::1"])],
    "short.example.test.": [("A", 5, ["192.0.2.5"])],
    "zero.example.test.": [("A", 0, ["192.0.2.0"])],
    "long.example.test.": [("A", 86400, ["192.0.2.86"])],
    "mixed.example.test.": [("A", 120, ["192.0.2.12"]), ("TXT", 30, ['"thirty"'])],
    "big.example.test.": [("A", 300, [f"192.0.2.{i}" for i in range(1, 61)])],  # ~1 KB: over 512
    "huge.example.test.": [("A", 300, [f"198.51.{i // 200}.{i % 200}" for i in range(200)])],  # ~3.3 KB
    "alias.example.test.": [("CNAME", 200, ["www.example.test."])],
}
ZONE.update({f"n{i}.example.test.": [("A", 300, [f"203.0.113.{i % 250}"])] for i in range(1, 501)})


@dataclass(frozen=True)
class Seen:
    """One query the server received."""

    name: str
    rdtype: str
    transport: str
    id: int


class LoopThread:
    """An event loop (uvloop) running in a daemon thread; `run` executes a coroutine there and waits for it."""

    def __init__(self, name: str) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class ZoneServer:
    """`with ZoneServer() as upstream:` a DNS server on 127.0.0.1:`upstream.port` (UDP and TCP)."""

    def __init__(self, zone: dict[str, list[tuple[str, int, list[str]]]] | None = None) -> None:
        self.zone = ZONE if zone is None else zone
        self.seen: list[Seen] = []
        self.delay = 0.0
        self.silent = False
        self.truncate_udp = False
        self.rcode: int | None = None
        self.upper_case_question = False
        self.forge: tuple[str, ...] = ()  # any of "id", "question", "port": forged replies sent first
        self.forge_only = False  # send the forged replies and never the real answer
        self.port = 0
        self._thread = LoopThread("test-dns-upstream")
        self._udp: asyncio.DatagramTransport | None = None
        self._side: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def __enter__(self) -> ZoneServer:
        self._thread.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.run(self._stop())
        self._thread.stop()

    @property
    def resolver(self) -> Resolver:
        return Resolver("127.0.0.1", self.port, backend_id=self.port)

    def count(self, name: str | None = None, transport: str | None = None) -> int:
        return sum(1 for s in list(self.seen) if (name is None or s.name == name.lower())
                   and (transport is None or s.transport == transport))

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=("127.0.0.1", 0))
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
            except OSError:
                udp.close()
                continue
            self._udp, self.port = udp, port
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        self._side, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))

    async def _stop(self) -> None:
        if self._udp is not None:
            protocol = self._udp.get_protocol()
            assert isinstance(protocol, _Udp)
            for task in list(protocol.tasks):
                task.cancel()
            await asyncio.gather(*protocol.tasks, return_exceptions=True)
        for transport in (self._udp, self._side):
            if transport is not None:
                transport.close()
        if self._tcp is not None:
            self._tcp.close()

    # --- answering ----------------------------------------------------------------------------------------
    def answer(self, query: dns.message.Message) -> dns.message.Message:
        """The zone's answer: the records, NODATA or NXDOMAIN with the SOA, REFUSED outside the zone."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name
        if self.rcode is not None:
            response.set_rcode(self.rcode)
            return response
        if not name.is_subdomain(ORIGIN):
            response.set_rcode(dns.rcode.REFUSED)
            return response
        records = self.zone.get(name.to_text().lower())
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        wanted = dns.rdatatype.to_text(question.rdtype)
        for rdtype, ttl, values in records or ():
            if rdtype == wanted or rdtype == "CNAME" or question.rdtype == dns.rdatatype.ANY:
                response.answer.append(dns.rrset.from_text_list(name, ttl, "IN", rdtype, values))
        if len(response.answer) == 1 and response.answer[0].rdtype == dns.rdatatype.CNAME != question.rdtype:
            target = response.answer[0][0].target
            for rdtype, ttl, values in self.zone.get(target.to_text().lower(), ()):
                if rdtype == wanted:
                    response.answer.append(dns.rrset.from_text_list(target, ttl, "IN", rdtype, values))
        if not response.answer:
            response.authority.append(dns.rrset.from_text(ORIGIN, SOA[1], "IN", "SOA", SOA[0]))
        if self.upper_case_question:
            response.question = [dns.rrset.RRset(dns.name.from_text(name.to_text().upper()), question.rdclass,
                                                 question.rdtype)]
        return response

    def record(self, query: dns.message.Message, transport: str) -> None:
        question = query.question[0]
        self.seen.append(Seen(question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype), transport,
                              query.id))

    def udp_wire(self, query: dns.message.Message) -> bytes:
        """The answer as the query's UDP limit allows: 512 without EDNS, else its payload; TC beyond."""
        response = self.answer(query)
        limit = 512 if query.edns < 0 else max(512, query.payload)
        data = response.to_wire(max_size=65535)
        if self.truncate_udp or len(data) > limit:
            response.answer.clear()
            response.authority.clear()
            response.flags |= dns.flags.TC
            data = response.to_wire()
        return data

    def forged(self, query: dns.message.Message, kind: str) -> bytes:
        response = dns.message.make_response(query)
        name = query.question[0].name
        response.answer.append(dns.rrset.from_text(name, 86400, "IN", "A", POISON))
        if kind == "id":
            response.id = (query.id + 1) & 0xFFFF
        elif kind == "question":
            response.question = [dns.rrset.RRset(dns.name.from_text("other.example.test."), dns.rdataclass.IN,
                                                 dns.rdatatype.A)]
        return response.to_wire()

    async def on_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        self.record(query, "udp")
        if self.silent:
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        assert self._udp is not None and self._side is not None
        for kind in self.forge:
            sender = self._side if kind == "port" else self._udp
            sender.sendto(self.forged(query, kind), addr)
        if self.forge:
            if self.forge_only:
                return
            await asyncio.sleep(0.05)
        self._udp.sendto(self.udp_wire(query), addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(100):
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                query = dns.message.from_wire(await reader.readexactly(size))
                self.record(query, "tcp")
                if self.silent:
                    await asyncio.sleep(30)
                    return
                if self.delay:
                    await asyncio.sleep(self.delay)
                data = self.answer(query).to_wire(max_size=65535)
                writer.write(struct.pack(">H", len(data)) + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: ZoneServer) -> None:
        self.server = server
        self.tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self.server.on_udp(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ForwarderThread:
    """`with ForwarderThread(forwarder) as running:` the forwarder listening on 127.0.0.1:`running.port`."""

    def __init__(self, forwarder: DnsForwarder) -> None:
        self.forwarder = forwarder
        self.port = 0
        self._thread = LoopThread("test-dns-forwarder")

    def __enter__(self) -> ForwarderThread:
        self.port = self._thread.run(self.forwarder.start("127.0.0.1", 0))
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.run(self.forwarder.close())
        self._thread.stop()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the forwarder's loop (e.g. `forwarder.resolve(...)`)."""
        return self._thread.run(coro)


def forwarder_to(*resolvers: Resolver, clock: Clock | None = None, **options: Any) -> DnsForwarder:
    options.setdefault("timeout", 1.0)
    return DnsForwarder(resolvers=resolvers, options=DnsOptions(**options), clock=clock or Clock())


def closed_port() -> int:
    """A loopback port where nothing listens on UDP or TCP (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def silent_socket() -> socket.socket:
    """A bound UDP socket that nobody reads: queries to it vanish, as with a resolver that is down."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class AsgiThread:
    """`with AsgiThread(app) as server:` the ASGI app under a real uvicorn (uvloop, httptools) on loopback."""

    def __init__(self, app: Any) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)  # listening before uvicorn starts: early connections wait in the backlog
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="off", access_log=False,
                                proxy_headers=False, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: uvloop.run(self._server.serve(sockets=[self._socket])),
                                        name="test-doh", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AsgiThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()
