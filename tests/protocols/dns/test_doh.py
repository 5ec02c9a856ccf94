"""DNS over HTTPS (RFC 8484) and the earlier gateway's JSON wrapper, through uvicorn on loopback, with httpx."""
from __future__ import annotations

import base64
from collections.abc import Iterator

import dns.message
import dns.rcode
import httpx
import pytest

from protocols.dns import make_doh_app
from tests.protocols.dns.servers import AsgiThread, Clock, ZoneServer, forwarder_to

DNS_MESSAGE = "application/dns-message"


@pytest.fixture
def doh(upstream: ZoneServer, clock: Clock) -> Iterator[tuple[AsgiThread, httpx.Client]]:
    forwarder = forwarder_to(upstream.resolver, clock=clock)
    with AsgiThread(make_doh_app(forwarder)) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        server.forwarder = forwarder  # type: ignore[attr-defined]
        yield server, client


@pytest.fixture
def client(doh) -> httpx.Client:
    return doh[1]


def query_wire(name: str, rdtype: str = "A", qid: int = 0) -> bytes:
    message = dns.message.make_query(name, rdtype)
    message.id = qid
    return message.to_wire()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_get_answers_with_a_dns_message(client):
    response = client.get("/dns-query", params={"dns": b64url(query_wire("www.example.test"))})
    assert response.status_code == 200
    assert response.headers["content-type"] == DNS_MESSAGE
    message = dns.message.from_wire(response.content)
    assert (message.id, message.answer[0][0].address) == (0, "192.0.2.1")


def test_post_answers_with_a_dns_message_and_the_clients_id(client):
    response = client.post("/dns-query", content=query_wire("www.example.test", qid=4321),
                           headers={"content-type": DNS_MESSAGE, "accept": DNS_MESSAGE})
    assert response.status_code == 200
    message = dns.message.from_wire(response.content)
    assert (message.id, message.answer[0][0].address) == (4321, "192.0.2.1")


def test_cache_control_max_age_is_the_smallest_ttl_left(client, clock):
    first = client.get("/dns-query", params={"dns": b64url(query_wire("mixed.example.test", "TXT"))})
    clock.advance(10)
    second = client.get("/dns-query", params={"dns": b64url(query_wire("mixed.example.test", "TXT"))})
    assert first.headers["cache-control"] == "max-age=30"
    assert second.headers["cache-control"] == "max-age=20"


def test_a_negative_answer_gets_max_age_of_its_negative_ttl(client):
    response = client.get("/dns-query", params={"dns": b64url(query_wire("missing.example.test"))})
    assert dns.message.from_wire(response.content).rcode() == dns.rcode.NXDOMAIN
    assert response.headers["cache-control"] == "max-age=60"


def test_a_second_request_is_served_from_the_cache(client, upstream):
    for _ in range(3):
        client.post("/dns-query", content=query_wire("www.example.test"), headers={"content-type": DNS_MESSAGE})
    assert upstream.count("www.example.test.") == 1


@pytest.mark.parametrize("value", ["not base64!", "a+b/", "", "AAAA"])
def test_a_bad_dns_parameter_is_a_400_in_json(client, value):
    response = client.get("/dns-query", params={"dns": value}, headers={"x-request-id": "doh-1"})
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["request_id"]) == ("invalid_dns_request", "doh-1")
    assert response.headers["x-request-id"] == "doh-1"


def test_a_missing_dns_parameter_is_a_400_with_a_generated_request_id(client):
    response = client.get("/dns-query")
    assert response.status_code == 400
    assert response.json()["request_id"] == response.headers["x-request-id"] != ""


def test_a_malformed_message_is_a_400(client):
    response = client.post("/dns-query", content=query_wire("www.example.test") + b"junk",
                           headers={"content-type": DNS_MESSAGE})
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_dns_request"


def test_post_needs_the_dns_message_content_type(client):
    response = client.post("/dns-query", content=query_wire("www.example.test"),
                           headers={"content-type": "application/octet-stream"})
    assert response.status_code == 415
    assert response.json()["type"] == "unsupported_media_type"


def test_a_body_larger_than_a_dns_message_is_a_413(client):
    response = client.post("/dns-query", content=b"\x00" * 70_000, headers={"content-type": DNS_MESSAGE})
    assert response.status_code == 413


def test_other_methods_get_405_with_allow(client):
    response = client.delete("/dns-query")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_the_json_wrapper_answers_hex_and_whether_the_cache_answered(client):
    body = {"query": query_wire("www.example.test", qid=99).hex()}
    first = client.post("/dns/query", json=body)
    second = client.post("/dns/query", json=body)
    assert first.status_code == 200
    assert (first.json()["cached"], second.json()["cached"]) == (False, True)
    message = dns.message.from_wire(bytes.fromhex(second.json()["response"]))
    assert (message.id, message.answer[0][0].address) == (99, "192.0.2.1")


def test_the_json_wrapper_accepts_data_in_place_of_query(client):
    response = client.post("/dns/query", json={"data": query_wire("n3.example.test").hex()})
    assert dns.message.from_wire(bytes.fromhex(response.json()["response"])).answer[0][0].address == "203.0.113.3"


@pytest.mark.parametrize("body", [b"not json", b'{"query": "zz"}', b'{"other": "00"}', b"[1]", b'{"query": "0012"}'])
def test_the_json_wrapper_rejects_bad_input_with_400(client, body):
    response = client.post("/dns/query", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_dns_request"


def test_cache_stats_count_hits_misses_and_entries(client):
    for _ in range(3):
        client.post("/dns/query", json={"query": query_wire("www.example.test").hex()})
    stats = client.get("/dns/cache/stats").json()
    assert (stats["hits"], stats["misses"], stats["entries"], stats["evictions"]) == (2, 1, 1, 0)


def test_cache_cleanup_removes_expired_entries(client, clock):
    client.post("/dns/query", json={"query": query_wire("short.example.test").hex()})
    client.post("/dns/query", json={"query": query_wire("www.example.test").hex()})
    clock.advance(10)
    response = client.post("/dns/cache/cleanup")
    assert response.json() == {"removed": 1, "entries": 1}


def test_an_unknown_path_is_a_404_in_json(client):
    response = client.get("/dns/elsewhere")
    assert response.status_code == 404
    assert response.json()["type"] == "route_not_found"
