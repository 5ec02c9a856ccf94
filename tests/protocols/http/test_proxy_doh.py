"""ProxyApp serves DNS over HTTPS only for tables with dns routes; otherwise its paths are ordinary paths."""
from __future__ import annotations

import dns.message

from protocols.table import BackendSpec, RouteSpec
from tests.protocols.dns.servers import ZoneServer
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer


def test_a_table_without_dns_routes_routes_the_doh_path_like_any_other():
    with UpstreamServer() as upstream, ProxyServer([route("plain", "/dns-query", upstream.port)]) as proxy:
        reply = proxy.call("GET", "/dns-query")
    assert reply.status == 200 and reply.json()["path"] == "/dns-query"


def test_a_table_with_dns_routes_answers_doh_from_their_resolvers():
    with ZoneServer() as zone:
        resolvers = RouteSpec(id=9001, name="resolvers", external_path="/resolvers", methods=("POST",),
                              protocol="dns", backends=(BackendSpec(9001, "dns", "127.0.0.1", zone.port),))
        query = dns.message.make_query("www.example.test.", "A")
        with ProxyServer([resolvers]) as proxy:
            reply = proxy.call("POST", "/dns-query", [("Content-Type", "application/dns-message")], query.to_wire())
    assert reply.status == 200
    assert [r.to_text() for r in dns.message.from_wire(reply.body).answer[0]] == ["192.0.2.1"]
