"""A wss backend's own `tls` options (CA bundle, server name, verification) apply to the WebSocket proxy as they
do to an https backend: a real TLS WebSocket server on loopback with a certificate from a throwaway CA."""
from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from protocols.table import RouteSpec
from tests.support.edge import EdgeServer
from tests.support.wsbackend import WebSocketBackend, ws_route

NAME = "chat.internal"  # the only name the backend's certificate carries (not 127.0.0.1, the address it is at)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def backend(ca: trustme.CA) -> Iterator[WebSocketBackend]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)
    with WebSocketBackend(ssl=context) as server:
        yield server


def wss_route(port: int, **tls: Any) -> RouteSpec:
    route = ws_route("chat", "/ws/chat", port, scheme="wss")
    return replace(route, backends=tuple(replace(b, **tls) for b in route.backends))


def echoed(edge: EdgeServer) -> str:
    with connect(f"ws://127.0.0.1:{edge.port}/ws/chat", open_timeout=10) as ws:
        ws.send("over tls")
        return str(ws.recv(timeout=5))


def refused(edge: EdgeServer) -> tuple[int, dict[str, str]]:
    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://127.0.0.1:{edge.port}/ws/chat", open_timeout=10)
    return caught.value.response.status_code, json.loads(caught.value.response.body)


def test_the_backends_ca_and_server_name_let_the_tunnel_through(ca: trustme.CA, backend: WebSocketBackend) -> None:
    route = wss_route(backend.port, tls_ca=ca.cert_pem.bytes().decode(), tls_server_name=NAME)
    with EdgeServer([route]) as edge:
        assert echoed(edge) == "over tls"


def test_without_the_ca_the_certificate_does_not_verify_and_the_handshake_is_a_502(backend: WebSocketBackend) -> None:
    with EdgeServer([wss_route(backend.port, tls_server_name=NAME)]) as edge:
        status, error = refused(edge)
    assert status == 502 and error["type"] == "upstream_connect_refused"
    assert "TLS handshake failed (CERTIFICATE_VERIFY_FAILED)" in error["error"]


def test_the_ca_without_the_server_name_checks_the_address_and_refuses(ca: trustme.CA,
                                                                       backend: WebSocketBackend) -> None:
    with EdgeServer([wss_route(backend.port, tls_ca=ca.cert_pem.bytes().decode())]) as edge:
        status, error = refused(edge)
    assert status == 502 and error["type"] == "upstream_connect_refused"
    assert "TLS handshake failed (CERTIFICATE_VERIFY_FAILED)" in error["error"]


def test_verification_switched_off_lets_the_tunnel_through(backend: WebSocketBackend) -> None:
    with EdgeServer([wss_route(backend.port, tls_verify=False)]) as edge:
        assert echoed(edge) == "over tls"
