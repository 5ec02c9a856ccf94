"""WebSocket tunnels through the proxy listener: messages, subprotocols, forwarded fields, closes, counters."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support.edge import EdgeServer
from tests.support.wsbackend import WebSocketBackend, ws_route


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


@pytest.fixture
def edge(backend: WebSocketBackend) -> Iterator[EdgeServer]:
    routes = [
        ws_route("chat", "/ws/chat", backend.port),
        ws_route("rooms", "/ws/rooms/{room}", backend.port, internal_path="/chat/{room}/live"),
        ws_route("closer", "/ws/close", backend.port, internal_path="/close"),
    ]
    with EdgeServer(routes) as server:
        yield server


def open_ws(edge: EdgeServer, path: str, **options: object) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{edge.port}{path}", open_timeout=5, **options)  # type: ignore[arg-type]


def test_it_relays_text_messages_both_ways(edge: EdgeServer) -> None:
    with open_ws(edge, "/ws/chat") as ws:
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"


def test_it_relays_binary_messages_both_ways(edge: EdgeServer) -> None:
    payload = bytes(range(256)) * 300
    with open_ws(edge, "/ws/chat") as ws:
        ws.send(payload)
        assert ws.recv(timeout=5) == payload


def test_it_offers_the_clients_subprotocols_and_accepts_the_backends_choice(
        edge: EdgeServer, backend: WebSocketBackend) -> None:
    with open_ws(edge, "/ws/chat", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
    assert backend.handshakes[-1].subprotocols == ["chat.v1", "chat.v2"]


def test_a_client_without_subprotocols_gets_none(edge: EdgeServer) -> None:
    with open_ws(edge, "/ws/chat") as ws:
        assert ws.subprotocol is None


def test_it_forwards_path_parameters_into_the_internal_path_with_the_query(
        edge: EdgeServer, backend: WebSocketBackend) -> None:
    with open_ws(edge, "/ws/rooms/42?token=abc&x=%2F"):
        pass
    assert backend.handshakes[-1].path == "/chat/42/live?token=abc&x=%2F"


def test_it_forwards_cookies_authorization_and_other_end_to_end_fields(
        edge: EdgeServer, backend: WebSocketBackend) -> None:
    headers = [("Cookie", "session=s1"), ("Authorization", "Bearer t0ken"), ("X-Custom", "kept"),
               ("Origin", "https://app.example")]
    with open_ws(edge, "/ws/chat", additional_headers=headers):
        pass
    seen = backend.handshakes[-1]
    assert seen.header("cookie") == ["session=s1"]
    assert seen.header("authorization") == ["Bearer t0ken"]
    assert seen.header("x-custom") == ["kept"]
    assert seen.header("origin") == ["https://app.example"]


def test_it_drops_hop_by_hop_fields_and_makes_its_own_handshake(edge: EdgeServer, backend: WebSocketBackend) -> None:
    with open_ws(edge, "/ws/chat", additional_headers=[("Keep-Alive", "timeout=5"), ("TE", "trailers")]) as ws:
        client_key = ws.request.headers["Sec-WebSocket-Key"]
    seen = backend.handshakes[-1]
    assert seen.header("keep-alive") == [] and seen.header("te") == []
    assert len(seen.header("sec-websocket-key")) == 1 and seen.header("sec-websocket-key") != [client_key]
    assert seen.header("sec-websocket-extensions") == []


def test_it_sends_forwarded_fields_and_the_request_id(edge: EdgeServer, backend: WebSocketBackend) -> None:
    with open_ws(edge, "/ws/chat", additional_headers=[("X-Request-ID", "req-123")]) as ws:
        answered_id = ws.response.headers["X-Request-ID"]
    seen = backend.handshakes[-1]
    assert seen.header("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header("x-forwarded-proto") == ["http"]
    assert seen.header("x-forwarded-host") == [f"127.0.0.1:{edge.port}"]
    assert seen.header("via") == ["1.1 rusta"]
    assert seen.header("x-request-id") == ["req-123"] and answered_id == "req-123"


def test_the_backends_set_cookie_reaches_the_client(edge: EdgeServer) -> None:
    with open_ws(edge, "/ws/chat") as ws:
        assert ws.response.headers["Set-Cookie"] == "backend=yes; Path=/"


def test_the_clients_close_code_and_reason_reach_the_backend_within_a_second(
        edge: EdgeServer, backend: WebSocketBackend) -> None:
    ws = open_ws(edge, "/ws/chat")
    ws.send("hi")
    ws.recv(timeout=5)
    started = time.monotonic()
    ws.close(4000, "bye now")
    assert backend.wait_until(lambda b: bool(b.endings), timeout=5)
    ending = backend.endings[-1]
    assert (ending.code, ending.reason) == (4000, "bye now")
    assert ending.at - started < 1.0


def test_the_backends_close_code_and_reason_reach_the_client_within_a_second(edge: EdgeServer) -> None:
    with open_ws(edge, "/ws/close?code=4001&reason=done") as ws:
        ws.send("close please")
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        elapsed = time.monotonic() - started
    assert (ws.close_code, ws.close_reason) == (4001, "done")
    assert elapsed < 1.0


def test_the_gateway_answers_the_clients_pings(edge: EdgeServer) -> None:
    with open_ws(edge, "/ws/chat") as ws:
        assert ws.ping(b"are you there").wait(5)
        ws.send("still relaying")
        assert ws.recv(timeout=5) == "still relaying"


def test_it_counts_open_tunnels_messages_and_bytes_each_way_per_route(edge: EdgeServer) -> None:
    assert edge.app is not None
    metrics = edge.app.websocket.metrics
    with open_ws(edge, "/ws/chat") as ws:
        ws.send("abc")
        ws.recv(timeout=5)
        ws.send(b"12345")
        ws.recv(timeout=5)
        chat = next(row for row in metrics.snapshot() if row["route"] == "chat")
        assert chat["open"] == 1
    assert chat["messages_from_client"] == 2 and chat["messages_to_client"] == 2
    assert chat["bytes_from_client"] == 8 and chat["bytes_to_client"] == 8
    deadline = time.monotonic() + 5
    while metrics.snapshot()[0]["open"] and time.monotonic() < deadline:
        time.sleep(0.01)
    final = next(row for row in metrics.snapshot() if row["route"] == "chat")
    assert (final["open"], final["opened"], final["closed"]) == (0, 1, 1)
