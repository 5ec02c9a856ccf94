"""Answer sizes: truncated upstream answers retried over TCP, the client's EDNS buffer size honoured."""
from __future__ import annotations

import dns.flags

from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import ForwarderThread, forwarder_to


def is_truncated(response) -> bool:
    return bool(response.flags & dns.flags.TC)


def test_a_truncated_upstream_answer_is_asked_again_over_tcp(running, upstream):
    upstream.truncate_udp = True
    response = ask(running.port, "www.example.test")
    assert not is_truncated(response)
    assert response.answer[0][0].address == "192.0.2.1"
    assert upstream.count("www.example.test.", "udp") == 1
    assert upstream.count("www.example.test.", "tcp") == 1


def test_an_answer_over_512_bytes_is_truncated_for_a_client_without_edns(running, upstream):
    response = ask(running.port, "big.example.test", use_edns=False)
    assert is_truncated(response)
    assert response.answer == []
    assert response.question[0].name.to_text() == "big.example.test."


def test_the_client_retrying_over_tcp_gets_the_whole_answer_from_the_cache(running, upstream):
    ask(running.port, "big.example.test", use_edns=False)
    response = ask(running.port, "big.example.test", tcp=True, use_edns=False)
    assert not is_truncated(response)
    assert len(response.answer[0]) == 60
    assert upstream.count("big.example.test.", "udp") == 1  # answered TC: the forwarder went on over TCP
    assert upstream.count("big.example.test.", "tcp") == 1  # and not again for the client's TCP retry


def test_the_clients_edns_buffer_size_bounds_the_udp_answer(running):
    small = ask(running.port, "huge.example.test", use_edns=0, payload=1232)
    large = ask(running.port, "huge.example.test", use_edns=0, payload=4096)
    assert is_truncated(small) and small.answer == []
    assert not is_truncated(large) and len(large.answer[0]) == 200


def test_an_answer_that_fits_the_clients_buffer_is_not_truncated(running):
    response = ask(running.port, "big.example.test", use_edns=0, payload=1232)
    assert not is_truncated(response)
    assert len(response.answer[0]) == 60


def test_udp_answers_never_exceed_max_udp_payload_whatever_the_client_advertises(upstream, clock):
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, max_udp_payload=1232)) as running:
        response = ask(running.port, "huge.example.test", use_edns=0, payload=65000)
    assert is_truncated(response)


def test_tcp_clients_get_the_whole_answer(running):
    response = ask(running.port, "huge.example.test", tcp=True)
    assert not is_truncated(response)
    assert len(response.answer[0]) == 200
