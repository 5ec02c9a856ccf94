"""DNS on a real `runproxy`: UDP and TCP listeners with --dns-port, DNS over HTTPS on the proxy port."""
from __future__ import annotations

import re
import time
from collections.abc import Iterator

import dns.message
import dns.rcode
import pytest

from routes.services import save_route
from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import ZoneServer
from tests.support.gateway import Gateway, http, start_gateway

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zone() -> Iterator[ZoneServer]:
    with ZoneServer() as server:
        yield server


def dns_port(gateway: Gateway, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"DNS forwarder listening on 127\.0\.0\.1:(\d+)", gateway.log())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"runproxy did not report its DNS port:\n{gateway.log()}")


@pytest.fixture
def gateway(tmp_path, zone: ZoneServer) -> Iterator[Gateway]:
    save_route({"name": "resolvers", "protocol": "dns", "external_path": "/resolvers", "methods": ["POST"],
                "backends": [{"host": "127.0.0.1", "port": zone.port}]}, actor=None, source="test")
    running = start_gateway(tmp_path, workers=2, extra_env={"RUSTA_DNS_PORT": "0"})
    try:
        running.wait_version(1)
        yield running
    finally:
        assert running.stop() == 0


def test_queries_over_udp_and_tcp_are_answered_from_the_routes_resolver(gateway: Gateway, zone: ZoneServer):
    port = dns_port(gateway)
    over_udp = ask(port, "www.example.test.")
    over_tcp = ask(port, "www.example.test.", "AAAA", tcp=True)
    assert over_udp.rcode() == dns.rcode.NOERROR
    assert [r.to_text() for r in over_udp.answer[0]] == ["192.0.2.1"]
    assert [r.to_text() for r in over_tcp.answer[0]] == ["2001:db8::1"]


def test_dns_over_https_is_answered_on_the_proxy_port(gateway: Gateway):
    query = dns.message.make_query("mixed.example.test.", "TXT")
    status, headers, body = http("POST", gateway.url + "/dns-query", body=query.to_wire(),
                                 headers={"Content-Type": "application/dns-message",
                                          "Accept": "application/dns-message"})
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/dns-message"
    answer = dns.message.from_wire(body)
    assert answer.id == query.id and [r.to_text() for r in answer.answer[0]] == ['"thirty"']


def test_without_the_flag_runproxy_opens_no_dns_listener(tmp_path, zone: ZoneServer):
    running = start_gateway(tmp_path)
    try:
        assert "DNS forwarder listening" not in running.log()
    finally:
        assert running.stop() == 0
