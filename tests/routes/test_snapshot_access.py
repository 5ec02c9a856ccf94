"""A route's own `jwt` block, saved through the service layer, is enforced by a real proxy serving build_table()."""
from __future__ import annotations

import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest

from routes import services
from routes.snapshot import build_table
from tests.support.proxy import ProxyServer
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db

SECRET = "the-orders-route-own-hs256-secret-0123456789"


def token(secret: str = SECRET) -> str:
    return pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, secret, algorithm="HS256")


@pytest.fixture
def proxy(route_doc) -> Iterator[ProxyServer]:
    with UpstreamServer() as upstream:
        # No auth_required and no gateway-wide jwt block: the route's own block alone makes it require a token.
        services.save_route(route_doc(name="orders", external_path="/orders", methods=["GET"],
                                      backends=[{"host": "http://127.0.0.1", "port": upstream.port}],
                                      jwt={"secret": SECRET}), actor=None, source="api")
        server = ProxyServer([])
        server.state.install(build_table())
        with server:
            yield server


def test_a_request_without_a_token_is_refused_with_401(proxy):
    reply = proxy.call("GET", "/orders", [("Host", "gw.test")])
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == ["Bearer"]


def test_a_request_with_a_token_signed_by_the_routes_secret_reaches_the_backend(proxy):
    reply = proxy.call("GET", "/orders", [("Host", "gw.test"), ("Authorization", f"Bearer {token()}")])
    assert reply.status == 200
    assert reply.json()["path"] == "/orders"


def test_a_token_signed_with_another_secret_is_refused_with_401(proxy):
    forged = token("another-secret-that-is-also-32-bytes-long-00")
    reply = proxy.call("GET", "/orders", [("Host", "gw.test"), ("Authorization", f"Bearer {forged}")])
    assert reply.status == 401
