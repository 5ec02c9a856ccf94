"""The forwarder's cache seen from a client: hits without upstream queries, TTLs, negative caching, bounds."""
from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import ForwarderThread, forwarder_to


def ttl_of(response: dns.message.Message) -> int:
    return response.answer[0].ttl


def test_a_cache_hit_restores_the_client_id_and_asks_no_resolver(running, upstream):
    first = ask(running.port, "www.example.test", qid=1111)
    second = ask(running.port, "www.example.test", qid=2222)
    assert (first.id, second.id) == (1111, 2222)
    assert second.answer == first.answer
    assert upstream.count("www.example.test.") == 1
    assert running.forwarder.cache.stats()["hits"] == 1


def test_a_cache_hit_answers_with_the_question_in_the_clients_letter_case(running, upstream):
    ask(running.port, "www.example.test")
    response = ask(running.port, "WwW.ExAmPlE.TeSt")
    assert response.question[0].name.to_text() == "WwW.ExAmPlE.TeSt."
    assert upstream.count() == 1


def test_ttls_are_decremented_by_the_time_spent_in_cache(running, clock):
    assert ttl_of(ask(running.port, "www.example.test")) == 300
    clock.advance(100)
    assert ttl_of(ask(running.port, "www.example.test")) == 200


def test_an_entry_lives_as_long_as_the_smallest_answer_ttl(running, upstream, clock):
    ask(running.port, "short.example.test")
    clock.advance(4)
    assert ttl_of(ask(running.port, "short.example.test")) == 1
    clock.advance(1)
    assert ttl_of(ask(running.port, "short.example.test")) == 5
    assert upstream.count("short.example.test.") == 2


def test_ttls_are_capped_by_max_ttl(upstream, clock):
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, max_ttl=600)) as running:
        assert ttl_of(ask(running.port, "long.example.test")) == 600
        clock.advance(600)
        ask(running.port, "long.example.test")
    assert upstream.count("long.example.test.") == 2


def test_min_ttl_keeps_short_lived_answers_cached_and_serves_them_with_ttl_zero(upstream, clock):
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, min_ttl=30)) as running:
        ask(running.port, "zero.example.test")
        clock.advance(20)
        response = ask(running.port, "zero.example.test")
    assert ttl_of(response) == 0
    assert upstream.count("zero.example.test.") == 1


def test_answers_with_ttl_zero_are_not_cached_without_a_floor(running, upstream):
    ask(running.port, "zero.example.test")
    ask(running.port, "zero.example.test")
    assert upstream.count("zero.example.test.") == 2


def test_nxdomain_is_cached_for_the_soa_minimum(running, upstream, clock):
    first = ask(running.port, "missing.example.test")
    assert first.rcode() == dns.rcode.NXDOMAIN
    clock.advance(59)
    second = ask(running.port, "missing.example.test")
    assert second.rcode() == dns.rcode.NXDOMAIN
    assert second.authority[0].ttl == 1  # min(SOA TTL 600, MINIMUM 60) less 59 s in cache
    assert upstream.count("missing.example.test.") == 1
    clock.advance(1)
    ask(running.port, "missing.example.test")
    assert upstream.count("missing.example.test.") == 2


def test_nodata_is_cached_like_nxdomain(running, upstream, clock):
    first = ask(running.port, "www.example.test", "MX")
    assert (first.rcode(), first.answer) == (dns.rcode.NOERROR, [])
    clock.advance(30)
    second = ask(running.port, "www.example.test", "MX")
    assert second.authority[0].rdtype == dns.rdatatype.SOA
    assert upstream.count("www.example.test.") == 1


def test_negative_answers_are_cached_no_longer_than_max_negative_ttl(upstream, clock):
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, max_negative_ttl=10)) as running:
        assert ask(running.port, "missing.example.test").authority[0].ttl == 10
        clock.advance(10)
        ask(running.port, "missing.example.test")
    assert upstream.count("missing.example.test.") == 2


def test_the_do_bit_is_part_of_the_cache_key(running, upstream):
    ask(running.port, "www.example.test", use_edns=0)
    ask(running.port, "www.example.test", want_dnssec=True)
    ask(running.port, "www.example.test", want_dnssec=True)
    assert upstream.count("www.example.test.") == 2


def test_each_client_gets_an_opt_record_only_when_it_sent_one(running):
    with_edns = ask(running.port, "www.example.test", use_edns=0, payload=1400)
    without = ask(running.port, "www.example.test", use_edns=False)
    assert with_edns.edns == 0 and with_edns.payload == running.forwarder.options.edns_payload
    assert without.edns == -1


def test_servfail_is_not_cached(running, upstream):
    upstream.rcode = dns.rcode.SERVFAIL
    assert ask(running.port, "www.example.test").rcode() == dns.rcode.SERVFAIL
    upstream.rcode = None
    assert ask(running.port, "www.example.test").rcode() == dns.rcode.NOERROR


def test_the_least_recently_used_entry_is_evicted_at_max_entries(upstream, clock):
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, max_entries=2)) as running:
        for name in ("n1.example.test", "n2.example.test", "n1.example.test", "n3.example.test"):
            ask(running.port, name)
        stats = running.forwarder.cache.stats()
        ask(running.port, "n1.example.test")
        ask(running.port, "n2.example.test")
    assert (stats["entries"], stats["evictions"]) == (2, 1)
    assert upstream.count("n1.example.test.") == 1  # recently used, kept
    assert upstream.count("n2.example.test.") == 2  # least recently used, evicted


def test_cleanup_removes_expired_entries_and_counts_them(running, clock):
    ask(running.port, "short.example.test")
    ask(running.port, "www.example.test")
    clock.advance(10)
    assert running.forwarder.cache.cleanup() == 1
    assert running.forwarder.cache.stats()["entries"] == 1


def test_identical_queries_in_flight_share_one_upstream_query(running, upstream):
    upstream.delay = 0.3

    async def many() -> list[dns.message.Message]:
        queries = [dns.message.make_query("www.example.test", "A") for _ in range(20)]
        return await asyncio.gather(*(dns.asyncquery.udp(q, "127.0.0.1", port=running.port, timeout=5)
                                      for q in queries))

    responses = asyncio.run(many())
    assert all(r.answer and r.answer[0][0].address == "192.0.2.1" for r in responses)
    assert upstream.count("www.example.test.") == 1


def test_a_cname_chain_is_cached_for_its_smallest_ttl(running, upstream, clock):
    first = ask(running.port, "alias.example.test")
    assert [rrset.rdtype for rrset in first.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    clock.advance(199)
    ask(running.port, "alias.example.test")
    clock.advance(1)
    ask(running.port, "alias.example.test")
    assert upstream.count("alias.example.test.") == 2
