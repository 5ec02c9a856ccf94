"""Malformed packets: FORMERR when the header can be read, silence otherwise, and the server goes on answering."""
from __future__ import annotations

import contextlib
import random
import socket
import struct

import dns.message
import dns.query
import dns.rcode
import pytest

from protocols.dns import wire
from tests.protocols.dns.conftest import ask


def exchange(port: int, packet: bytes, timeout: float = 1.0) -> bytes | None:
    """Send raw bytes over UDP; the answer, or None when none came within `timeout`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.send(packet)
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def tcp_exchange(port: int, packets: list[bytes], timeout: float = 2.0) -> list[bytes]:
    """Send length-prefixed messages over one TCP connection; the answers until it closes or goes quiet."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(struct.pack(">H", len(p)) + p for p in packets))
        reader = sock.makefile("rb")
        for _ in packets:
            head = reader.read(2)
            if len(head) < 2:
                break
            answers.append(reader.read(struct.unpack(">H", head)[0]))
    return answers


def header(qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def rcode_of(answer: bytes) -> int:
    return struct.unpack(">H", answer[2:4])[0] & 0x000F


QUESTION = b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"

MALFORMED = {
    "truncated question": header() + b"\x03www\x07exa",
    "no question": header(qd=0),
    "two questions": header(qd=2) + QUESTION + QUESTION,
    "answer records in a query": header(an=1) + QUESTION,
    "trailing bytes": header() + QUESTION + b"junk",
    "label running past the end": header() + b"\x3fabc",
    "compression loop": header() + b"\xc0\x0c\x00\x01\x00\x01",
    "bad label type": header() + b"\x80abc\x00\x00\x01\x00\x01",
    "record count without records": header(ar=3) + QUESTION,
    "two OPT records": header(ar=2) + QUESTION + wire.opt_record(1232, False) * 2,
}


@pytest.mark.parametrize("packet", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_query_gets_formerr_with_its_id(running, upstream, packet):
    answer = exchange(running.port, packet)
    assert answer is not None
    assert struct.unpack(">H", answer[:2])[0] == 0x1234
    assert rcode_of(answer) == dns.rcode.FORMERR
    assert upstream.count() == 0


def test_packets_shorter_than_a_header_are_dropped_and_the_server_still_answers(running):
    for size in range(12):
        assert exchange(running.port, bytes(size), timeout=0.1) is None
    assert ask(running.port, "www.example.test").rcode() == dns.rcode.NOERROR
    assert running.forwarder.dropped == 12


def test_a_response_sent_to_the_forwarder_is_not_answered(running):
    response = dns.message.make_response(dns.message.make_query("www.example.test", "A")).to_wire()
    assert exchange(running.port, response, timeout=0.2) is None


def test_other_opcodes_get_notimp(running, upstream):
    answer = exchange(running.port, header(flags=0x2800) + QUESTION)  # opcode 5, UPDATE
    assert answer is not None and rcode_of(answer) == dns.rcode.NOTIMP
    assert upstream.count() == 0


def test_random_garbage_never_stops_the_server(running):
    rng = random.Random(8484)
    for _ in range(300):
        packet = rng.randbytes(rng.randrange(0, 200))
        exchange(running.port, packet, timeout=0.01)
    mutated = bytearray(dns.message.make_query("www.example.test", "A", use_edns=0).to_wire())
    for _ in range(300):
        broken = bytearray(mutated)
        broken[rng.randrange(len(broken))] = rng.randrange(256)
        exchange(running.port, bytes(broken[: rng.randrange(12, len(broken) + 1)]), timeout=0.01)
    assert ask(running.port, "www.example.test").rcode() == dns.rcode.NOERROR


def test_garbage_over_tcp_gets_formerr_and_the_connection_goes_on(running):
    query = dns.message.make_query("www.example.test", "A").to_wire()
    answers = tcp_exchange(running.port, [header() + b"\x03www", query])
    assert len(answers) == 2
    assert rcode_of(answers[0]) == dns.rcode.FORMERR
    assert dns.message.from_wire(answers[1]).answer[0][0].address == "192.0.2.1"


def test_a_tcp_client_that_stops_mid_message_does_not_hurt_the_server(running):
    with socket.create_connection(("127.0.0.1", running.port), timeout=2) as sock:
        sock.sendall(b"\x00\x40abc")
    assert ask(running.port, "www.example.test", tcp=True).rcode() == dns.rcode.NOERROR


def test_a_type_the_forwarder_does_not_know_is_still_forwarded(running, upstream):
    response = ask(running.port, "www.example.test", "TYPE65280")
    assert response.rcode() == dns.rcode.NOERROR
    assert upstream.count("www.example.test.") == 1


def test_a_class_other_than_in_is_still_forwarded(running, upstream):
    query = dns.message.make_query("www.example.test", "TXT", "CH")
    response = dns.query.udp(query, "127.0.0.1", port=running.port, timeout=5)
    assert response.id == query.id
    assert upstream.count("www.example.test.") == 1


def test_the_query_reader_raises_nothing_but_unparseable_on_any_input():
    rng = random.Random(1035)
    valid = dns.message.make_query("www.example.test", "A", use_edns=0, want_dnssec=True).to_wire()
    query = wire.parse_query(valid)
    for _ in range(5000):
        if rng.random() < 0.5:
            packet = rng.randbytes(rng.randrange(0, 64))
        else:
            mutated = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            packet = bytes(mutated[: rng.randrange(0, len(mutated) + 1)])
        with contextlib.suppress(wire.Unparseable):
            wire.parse_query(packet)
        wire.answers_query(packet, 0x1234, query)  # never raises: False for anything that is not our answer
        wire.min_ttl(packet)
