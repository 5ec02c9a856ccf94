"""The listeners: UDP and TCP on one port, sockets bound once and served by several workers, a clean stop."""
from __future__ import annotations

import socket

import dns.rcode
import pytest

from protocols.dns import bind_dns_sockets
from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import LoopThread, forwarder_to


def test_udp_and_tcp_answer_on_the_same_port(running):
    assert ask(running.port, "www.example.test").rcode() == dns.rcode.NOERROR
    assert ask(running.port, "www.example.test", tcp=True).rcode() == dns.rcode.NOERROR


def test_two_workers_serve_the_sockets_one_parent_bound(upstream, clock):
    udp, tcp = bind_dns_sockets("127.0.0.1", 0)
    port = udp.getsockname()[1]
    workers = [(LoopThread(f"worker-{i}"), forwarder_to(upstream.resolver, clock=clock)) for i in range(2)]
    try:
        for thread, forwarder in workers:
            thread.run(forwarder.start_sockets(udp, tcp))
        for i in range(1, 21):
            assert ask(port, f"n{i}.example.test", tcp=i % 2 == 0).rcode() == dns.rcode.NOERROR
        assert sum(forwarder.cache.stats()["misses"] for _, forwarder in workers) == 20
    finally:
        for thread, forwarder in workers:
            thread.run(forwarder.close())
            thread.stop()
        udp.close()
        tcp.close()


def test_after_close_the_port_no_longer_answers(upstream, clock):
    thread = LoopThread("closing")
    forwarder = forwarder_to(upstream.resolver, clock=clock)
    try:
        port = thread.run(forwarder.start("127.0.0.1", 0))
        ask(port, "www.example.test")
        thread.run(forwarder.close())
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        thread.stop()
