"""How tunnels end without either side asking: route removal, shutdown, idleness; and what does not end them."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from protocols.table import RouteSpec
from tests.support.edge import EdgeServer
from tests.support.wsbackend import WebSocketBackend, ws_route


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


def open_ws(edge: EdgeServer, path: str) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{edge.port}{path}", open_timeout=5)


def closed_within(ws: ClientConnection, seconds: float) -> float:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=seconds)
    return time.monotonic() - started


def test_a_configuration_change_keeps_open_tunnels(backend: WebSocketBackend) -> None:
    chat = ws_route("chat", "/ws/chat", backend.port)
    other = ws_route("other", "/ws/other", backend.port)
    with EdgeServer([chat, other]) as edge, open_ws(edge, "/ws/chat") as ws:
        edited = dataclasses.replace(chat, read_timeout=99.0, priority=5)
        edge.install([edited], version=2)  # the route was edited, another was deleted
        time.sleep(0.6)  # several route checks
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


def test_deleting_the_route_closes_its_tunnels_with_1001(backend: WebSocketBackend) -> None:
    chat = ws_route("chat", "/ws/chat", backend.port)
    with EdgeServer([chat]) as edge, open_ws(edge, "/ws/chat") as ws:
        edge.install([], version=2)
        elapsed = closed_within(ws, 5)
    assert (ws.close_code, ws.close_reason) == (1001, "route removed")
    assert elapsed < 2
    assert backend.wait_until(lambda b: bool(b.endings))
    assert backend.endings[-1].code == 1001


def test_turning_the_route_into_plain_http_closes_its_tunnels(backend: WebSocketBackend) -> None:
    chat = ws_route("chat", "/ws/chat", backend.port)
    with EdgeServer([chat]) as edge, open_ws(edge, "/ws/chat") as ws:
        edge.install([dataclasses.replace(chat, protocol="http")], version=2)
        closed_within(ws, 5)
    assert ws.close_code == 1001


def test_shutdown_closes_every_tunnel_with_1001(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("chat", "/ws/chat", backend.port)]) as edge:
        first, second = open_ws(edge, "/ws/chat"), open_ws(edge, "/ws/chat")
        assert edge.app is not None
        edge.run(edge.app.websocket.aclose())
        for ws in (first, second):
            closed_within(ws, 5)
            assert (ws.close_code, ws.close_reason) == (1001, "gateway shutting down")
            ws.close()
    assert backend.wait_until(lambda b: len(b.endings) == 2)
    assert {ending.code for ending in backend.endings} == {1001}


def test_an_idle_tunnel_closes_with_1001_after_the_routes_idle_timeout(backend: WebSocketBackend) -> None:
    idle = ws_route("idle", "/ws/idle", backend.port, policies={"websocket": {"idle_timeout_s": 0.4}})
    with EdgeServer([idle]) as edge, open_ws(edge, "/ws/idle") as ws:
        elapsed = closed_within(ws, 5)
    assert (ws.close_code, ws.close_reason) == (1001, "idle timeout")
    assert 0.3 < elapsed < 1.5


def test_messages_keep_a_tunnel_open_past_the_idle_timeout(backend: WebSocketBackend) -> None:
    idle = ws_route("idle", "/ws/idle", backend.port, policies={"websocket": {"idle_timeout_s": 0.5}})
    with EdgeServer([idle]) as edge, open_ws(edge, "/ws/idle") as ws:
        for _ in range(6):  # 1.2 s in all, never 0.5 s quiet
            time.sleep(0.2)
            ws.send("tick")
            assert ws.recv(timeout=5) == "tick"


def test_a_new_handshake_after_shutdown_is_refused_with_503(backend: WebSocketBackend) -> None:
    from websockets.exceptions import InvalidStatus

    route: RouteSpec = ws_route("chat", "/ws/chat", backend.port)
    with EdgeServer([route]) as edge:
        assert edge.app is not None
        edge.run(edge.app.websocket.aclose())
        with pytest.raises(InvalidStatus) as caught:
            open_ws(edge, "/ws/chat")
    assert caught.value.response.status_code == 503


def test_sigterm_of_the_gateway_process_closes_tunnels_with_1001_on_both_sides(backend: WebSocketBackend) -> None:
    from tests.support.edge import EdgeProcess

    with EdgeProcess([ws_route("chat", "/ws/chat", backend.port)]) as gateway:
        ws = connect(f"ws://127.0.0.1:{gateway.port}/ws/chat", open_timeout=5)
        ws.send("hi")
        ws.recv(timeout=5)
        gateway.terminate()
        closed_within(ws, 5)
    assert (ws.close_code, ws.close_reason) == (1001, "gateway shutting down")
    assert backend.wait_until(lambda b: bool(b.endings))
    assert backend.endings[-1].code == 1001
