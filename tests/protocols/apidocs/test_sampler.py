"""protocols.apidocs.sampler through a real ProxyApp (uvicorn on loopback) and a real backend: the rate, the body
cap, and exchanges that pass exactly as they would unsampled."""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator

import pytest

from protocols.apidocs.config import DocsPolicy
from protocols.apidocs.sampler import sampled, samples
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def proxy_for(upstream: UpstreamServer, **docs: object) -> ProxyServer:
    docs_route = route("docs", "/docs/{what}", upstream.port, methods=("GET", "POST"), internal_path="/{what}",
                       policies={"api_docs": docs})
    plain = route("plain", "/plain/{what}", upstream.port, methods=("GET", "POST"), internal_path="/{what}")
    return ProxyServer([docs_route, plain])


@pytest.fixture(autouse=True)
def empty_buffer() -> Iterator[None]:
    samples.take()
    samples.dropped = 0
    yield
    samples.take()


def test_a_rate_of_a_tenth_samples_about_a_tenth_of_the_requests(upstream):
    requests, rate = 1000, 0.1
    # Binomial: mean n*p, standard deviation sqrt(n*p*(1-p)); 5 of them leave a false alarm about once in 3.5
    # million runs.
    tolerance = 5 * math.sqrt(requests * rate * (1 - rate))
    with proxy_for(upstream, sample_rate=rate) as proxy:
        connection = proxy.connection()
        for _ in range(requests):
            connection.request("GET", "/docs/echo")
            assert connection.getresponse().read()
        connection.close()
    taken = len(samples.take())
    print(f"\n{taken} of {requests} sampled at {rate} (expected {requests * rate:.0f} ± {tolerance:.0f})")
    assert abs(taken - requests * rate) <= tolerance


def test_the_draw_follows_the_rate_at_its_ends():
    assert not any(sampled(DocsPolicy(sample_rate=0.0)) for _ in range(1000))
    assert all(sampled(DocsPolicy(sample_rate=1.0)) for _ in range(1000))


def test_a_route_without_the_block_is_never_sampled(upstream):
    with proxy_for(upstream, sample_rate=1) as proxy:
        assert proxy.call("GET", "/plain/echo").status == 200
    assert samples.take() == []


def test_a_sampled_exchange_keeps_its_method_path_query_status_and_json_bodies(upstream):
    with proxy_for(upstream, sample_rate=1) as proxy:
        body = json.dumps({"name": "x"}).encode()
        reply = proxy.call("POST", "/docs/echo?limit=5", [("Content-Type", "application/json")], body)
        assert reply.status == 200
    (sample,) = samples.take()
    assert (sample.route, sample.method, sample.path, sample.query, sample.status) == \
        ("docs", "POST", "/docs/echo", b"limit=5", 200)
    assert sample.pattern == (None, "what")
    assert json.loads(sample.request_body) == {"name": "x"}
    assert sample.response_type == "application/json"
    assert json.loads(sample.response_body)["method"] == "POST"  # the echo's answer, as the client got it


def test_bodies_over_the_cap_are_not_kept_and_marked(upstream):
    big = json.dumps({"blob": "x" * 5000}).encode()
    with proxy_for(upstream, sample_rate=1, max_body_bytes=1024) as proxy:
        reply = proxy.call("POST", "/docs/respond?header=Content-Type:application/json&bytes=4096",
                           [("Content-Type", "application/json")], big)
        assert reply.status == 200 and len(reply.body) == 4096
    (sample,) = samples.take()
    assert sample.request_body is None and sample.request_over
    assert sample.response_body is None and sample.response_over


def test_a_large_streamed_answer_passes_unchanged_while_sampled(upstream):
    chunks, size = 200, 64 << 10
    target = f"/docs/drip?chunks={chunks}&size={size}&gap_ms=0&type=application/json"
    with proxy_for(upstream, sample_rate=1, max_body_bytes=4096) as proxy:
        sampled_reply = proxy.call("GET", target, timeout=60)
        plain_reply = proxy.call("GET", target.replace("/docs/", "/plain/"), timeout=60)
    assert sampled_reply.status == plain_reply.status == 200
    assert len(sampled_reply.body) == chunks * size
    assert hashlib.sha256(sampled_reply.body).digest() == hashlib.sha256(plain_reply.body).digest()
    (sample,) = samples.take()
    assert sample.response_over and sample.response_body is None


def test_a_large_streamed_upload_reaches_the_backend_whole_while_sampled(upstream):
    body = b"[" + b"1," * (3 << 20) + b"1]"
    with proxy_for(upstream, sample_rate=1, max_body_bytes=4096) as proxy:
        reply = proxy.call("POST", "/docs/upload", [("Content-Type", "application/json")], body, timeout=60)
    assert reply.status == 200
    assert reply.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    (sample,) = samples.take()
    assert sample.request_over and sample.request_body is None


def test_an_answer_of_the_gateway_itself_is_not_a_sample(upstream):
    with proxy_for(upstream, sample_rate=1) as proxy:
        upstream.kill()
        try:
            assert proxy.call("GET", "/docs/echo").status == 502
        finally:
            upstream.revive()
    assert samples.take() == []
