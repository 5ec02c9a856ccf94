"""WebSocket handshakes the gateway answers itself: real HTTP statuses with Rusta's JSON errors, never a hang."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from protocols.errors import GatewayError
from protocols.table import RouteSpec
from protocols.websocket import app as websocket_app
from tests.support.edge import EdgeServer
from tests.support.proxy import route as http_route
from tests.support.upstream import BlackholeListener, refused_port
from tests.support.wsbackend import WebSocketBackend, ws_route


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


def refusal(port: int, path: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10)
    return caught.value


def body(exc: InvalidStatus) -> dict[str, str]:
    return json.loads(exc.response.body)


def test_a_path_without_a_websocket_route_answers_404(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("chat", "/ws/chat", backend.port)]) as edge:
        exc = refusal(edge.port, "/ws/nothing-here")
    assert exc.response.status_code == 404
    assert body(exc)["type"] == "route_not_found"
    assert exc.response.headers["Content-Type"] == "application/json"
    assert exc.response.headers["X-Request-ID"] == body(exc)["request_id"]


def test_an_upgrade_on_a_plain_http_route_answers_404(backend: WebSocketBackend) -> None:
    with EdgeServer([http_route("api", "/api", backend.port, methods=("GET",))]) as edge:
        exc = refusal(edge.port, "/api")
    assert exc.response.status_code == 404


def test_a_refused_backend_answers_502_at_the_handshake() -> None:
    with EdgeServer([ws_route("chat", "/ws/chat", refused_port())]) as edge:
        started = time.monotonic()
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 502
    assert body(exc)["type"] == "upstream_connect_refused"
    assert time.monotonic() - started < 2


def test_a_backend_host_that_does_not_resolve_answers_502_name_not_resolved_at_the_handshake() -> None:
    spec = ws_route("chat", "/ws/chat", 8080)
    spec = replace(spec, backends=(replace(spec.backends[0], host="nothing.invalid"),))
    with EdgeServer([spec]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 502
    assert body(exc)["type"] == "upstream_name_not_resolved"
    assert "nothing.invalid:8080" in body(exc)["error"]


def test_a_backend_that_never_accepts_answers_504_after_the_connect_timeout() -> None:
    with BlackholeListener() as blackhole, EdgeServer([
        ws_route("chat", "/ws/chat", blackhole.port, connect_timeout=0.3),
    ]) as edge:
        started = time.monotonic()
        exc = refusal(edge.port, "/ws/chat")
        elapsed = time.monotonic() - started
    assert exc.response.status_code == 504
    assert body(exc)["type"] == "upstream_connect_timeout"
    assert 0.25 < elapsed < 3


def test_a_route_without_backends_answers_503() -> None:
    empty = RouteSpec(id=1, name="empty", external_path="/ws/empty", methods=("GET",), backends=(),
                      protocol="websocket")
    with EdgeServer([empty]) as edge:
        exc = refusal(edge.port, "/ws/empty")
    assert exc.response.status_code == 503
    assert body(exc)["type"] == "no_backend"
    assert "Retry-After" in exc.response.headers


def test_a_backend_refusing_the_upgrade_passes_its_4xx_status_on(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("locked", "/ws/locked", backend.port, internal_path="/forbidden")]) as edge:
        exc = refusal(edge.port, "/ws/locked")
    assert exc.response.status_code == 403
    assert body(exc)["type"] == "upstream_upgrade_rejected"


def test_a_backend_that_is_not_a_websocket_server_answers_502() -> None:
    from tests.support.upstream import UpstreamServer

    with UpstreamServer() as upstream, EdgeServer([ws_route("plain", "/ws/plain", upstream.port)]) as edge:
        exc = refusal(edge.port, "/ws/plain")
    assert exc.response.status_code == 502
    assert body(exc)["type"] == "upstream_upgrade_rejected"


def test_the_authorization_hook_can_refuse_the_handshake_before_any_backend_is_contacted(
        backend: WebSocketBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    async def deny(*args: object) -> None:
        raise GatewayError(401, "unauthorized", "token required")

    monkeypatch.setattr(websocket_app, "authorize_handshake", deny)
    with EdgeServer([ws_route("chat", "/ws/chat", backend.port)]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 401
    assert body(exc)["type"] == "unauthorized"
    assert backend.handshakes == []


def test_refused_handshakes_are_counted_per_route() -> None:
    with EdgeServer([ws_route("chat", "/ws/chat", refused_port())]) as edge:
        refusal(edge.port, "/ws/chat")
        assert edge.app is not None
        rows = edge.app.websocket.metrics.snapshot()
    assert rows[0]["rejected"] == 1 and rows[0]["opened"] == 0
