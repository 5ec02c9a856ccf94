"""No cache poisoning: a reply counts only with our random id, our question and the resolver's address and port."""
from __future__ import annotations

import time

import dns.rcode
import pytest

from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import POISON, ForwarderThread, forwarder_to


def addresses(response) -> set[str]:
    return {rdata.address for rrset in response.answer for rdata in rrset if hasattr(rdata, "address")}


@pytest.mark.parametrize("kind", ["id", "question", "port"])
def test_a_forged_reply_is_ignored_and_the_real_answer_delivered(running, upstream, kind):
    upstream.forge = (kind,)
    response = ask(running.port, "www.example.test")
    assert addresses(response) == {"192.0.2.1"}
    upstream.forge = ()
    # What the cache kept is the real answer too.
    assert addresses(ask(running.port, "www.example.test")) == {"192.0.2.1"}
    assert upstream.count("www.example.test.") == 1


def test_forged_replies_that_reach_the_socket_are_counted(running, upstream):
    upstream.forge = ("id", "question")
    ask(running.port, "www.example.test")
    assert running.forwarder.counters.ignored == 2


def test_all_forgeries_at_once_still_give_the_real_answer(running, upstream):
    upstream.forge = ("id", "question", "port")
    assert addresses(ask(running.port, "n7.example.test")) == {"203.0.113.7"}


def test_only_forged_replies_give_servfail_after_the_timeout_and_cache_nothing(upstream, clock):
    upstream.forge = ("id", "question", "port")
    upstream.forge_only = True
    with ForwarderThread(forwarder_to(upstream.resolver, clock=clock, timeout=0.3)) as running:
        started = time.monotonic()
        response = ask(running.port, "www.example.test")
        assert time.monotonic() - started >= 0.3
        assert response.rcode() == dns.rcode.SERVFAIL
        assert POISON not in addresses(response)
        upstream.forge, upstream.forge_only = (), False
        assert addresses(ask(running.port, "www.example.test")) == {"192.0.2.1"}


def test_every_upstream_query_carries_a_new_id_not_the_clients(running, upstream):
    for i in range(1, 9):
        ask(running.port, f"n{i}.example.test", qid=4242)
    upstream_ids = [seen.id for seen in upstream.seen]
    assert len(set(upstream_ids)) > 1
    assert 4242 not in upstream_ids


def test_an_answer_whose_question_differs_only_in_case_is_accepted(running, upstream):
    upstream.upper_case_question = True
    response = ask(running.port, "www.example.test")
    assert addresses(response) == {"192.0.2.1"}
    assert response.question[0].name.to_text() == "www.example.test."
