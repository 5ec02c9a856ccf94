"""WebSocket tunnels through a real `runproxy`: counted in /metrics, closed with 1001 on SIGTERM."""
from __future__ import annotations

import re
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from routes.services import save_route
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.wsbackend import WebSocketBackend

pytestmark = pytest.mark.django_db(transaction=True)


def chat_gateway(tmp_path, backend: WebSocketBackend) -> Gateway:
    save_route({"name": "chat", "external_path": "/ws/chat", "methods": ["GET"], "protocol": "websocket",
                "backends": [{"host": "ws://127.0.0.1", "port": backend.port}]}, actor=None, source="test")
    gateway = start_gateway(tmp_path)
    gateway.wait_version(1)
    return gateway


def metric(text: str, line_start: str) -> int | None:
    found = re.search(rf"^{re.escape(line_start)} (\d+)$", text, re.M)
    return int(found.group(1)) if found else None


def test_sigterm_closes_open_tunnels_with_1001_and_exits_zero(tmp_path):
    with WebSocketBackend() as backend:
        gateway = chat_gateway(tmp_path, backend)
        try:
            ws = connect(f"ws://127.0.0.1:{gateway.port}/ws/chat", open_timeout=5)
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            gateway.process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert (ws.close_code, ws.close_reason) == (1001, "gateway shutting down")
            assert gateway.process.wait(20) == 0
            assert backend.wait_until(lambda b: bool(b.endings))
            assert backend.endings[-1].code == 1001
        finally:
            gateway.stop()


def test_open_tunnels_messages_and_bytes_are_in_metrics(tmp_path):
    with WebSocketBackend() as backend:
        gateway = chat_gateway(tmp_path, backend)
        try:
            with connect(f"ws://127.0.0.1:{gateway.port}/ws/chat", open_timeout=5) as ws:
                for _ in range(3):
                    ws.send("hello")
                    ws.recv(timeout=5)
                deadline = time.monotonic() + 10
                text = ""
                while time.monotonic() < deadline:
                    _, _, body = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
                    text = body.decode()
                    if metric(text, 'rusta_websocket_messages_total{route="chat",direction="out"}') == 3:
                        break
                    time.sleep(0.2)
            assert metric(text, 'rusta_websocket_connections_open{route="chat"}') == 1
            assert metric(text, 'rusta_websocket_messages_total{route="chat",direction="in"}') == 3
            assert metric(text, 'rusta_websocket_messages_total{route="chat",direction="out"}') == 3
            assert metric(text, 'rusta_websocket_bytes_total{route="chat",direction="in"}') == 15
        finally:
            assert gateway.stop() == 0


def access_line(gateway: Gateway, path: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in gateway.access_lines() if line["path"] == path]
        if lines:
            return lines[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access-log line for {path}")


def test_a_websocket_session_writes_one_access_line_when_it_ends(tmp_path):
    with WebSocketBackend() as backend:
        gateway = chat_gateway(tmp_path, backend)
        try:
            with connect(f"ws://127.0.0.1:{gateway.port}/ws/chat", open_timeout=5) as ws:
                ws.send("hello")  # 5 bytes each way
                assert ws.recv(timeout=5) == "hello"
                time.sleep(0.2)
                assert not [line for line in gateway.access_lines() if line["path"] == "/ws/chat"]  # still open
            line = access_line(gateway, "/ws/chat")
        finally:
            gateway.stop()
    assert line["status"] == 101
    assert line["route"] == "chat"
    assert line["backend"] == f"127.0.0.1:{backend.port}"
    assert (line["bytes_in"], line["bytes_out"]) == (5, 5)
    assert line["duration_ms"] >= 200
    assert "error" not in line  # the client closed it


def test_a_refused_websocket_handshake_writes_an_access_line_with_its_error(tmp_path):
    with WebSocketBackend() as backend:
        gateway = chat_gateway(tmp_path, backend)
        try:
            with pytest.raises(InvalidStatus):
                connect(f"ws://127.0.0.1:{gateway.port}/ws/nowhere", open_timeout=5)
            line = access_line(gateway, "/ws/nowhere")
        finally:
            gateway.stop()
    assert (line["status"], line["error"], line["route"]) == (404, "route_not_found", None)
