"""Per-route message size limit, and backpressure: a slow reader holds the fast writer back, memory stays flat."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.edge import EdgeProcess, EdgeServer
from tests.support.wsbackend import WebSocketBackend, ws_route

LIMIT = {"websocket": {"max_message_bytes": 1024}}


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


def test_a_client_message_over_the_limit_closes_the_tunnel_with_1009(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("small", "/ws/small", backend.port, policies=LIMIT)]) as edge:
        with connect(f"ws://127.0.0.1:{edge.port}/ws/small") as ws:
            ws.send(b"x" * 1025)
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
    assert ws.close_code == 1009
    assert backend.wait_until(lambda b: bool(b.endings))
    assert backend.endings[-1].code == 1001  # the backend is told its client went away


def test_a_text_message_is_measured_in_utf8_bytes(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("small", "/ws/small", backend.port, policies=LIMIT)]) as edge:
        with connect(f"ws://127.0.0.1:{edge.port}/ws/small") as ws:
            ws.send("é" * 513)  # 513 characters, 1026 bytes
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
    assert ws.close_code == 1009


def test_a_message_at_the_limit_passes(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("small", "/ws/small", backend.port, policies=LIMIT)]) as edge:
        with connect(f"ws://127.0.0.1:{edge.port}/ws/small") as ws:
            ws.send(b"x" * 1024)
            assert ws.recv(timeout=5) == b"x" * 1024


def test_a_backend_message_over_the_limit_closes_the_tunnel_with_1009(backend: WebSocketBackend) -> None:
    route = ws_route("small", "/ws/small", backend.port, internal_path="/big", policies=LIMIT)
    with EdgeServer([route]) as edge:
        uri = f"ws://127.0.0.1:{edge.port}/ws/small?bytes=4096"
        with connect(uri) as ws, pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert ws.close_code == 1009


def test_the_default_limit_is_one_mebibyte(backend: WebSocketBackend) -> None:
    with EdgeServer([ws_route("chat", "/ws/chat", backend.port)]) as edge:
        with connect(f"ws://127.0.0.1:{edge.port}/ws/chat", max_size=None) as ws:
            ws.send(b"x" * (1 << 20))
            assert len(ws.recv(timeout=5)) == 1 << 20
            ws.send(b"x" * ((1 << 20) + 1))
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=5)
    assert ws.close_code == 1009


def _flood_sent_settles(backend: WebSocketBackend, seconds: float) -> tuple[int, int]:
    """The backend's flood counter now and `seconds` later."""
    first = backend.flood_sent
    time.sleep(seconds)
    return first, backend.flood_sent


@pytest.mark.slow
def test_a_client_that_stops_reading_pauses_the_backend_and_keeps_proxy_memory_flat(
        backend: WebSocketBackend) -> None:
    routes = [ws_route("flood", "/ws/flood", backend.port, internal_path="/flood"),
              ws_route("chat", "/ws/chat", backend.port)]
    with EdgeProcess(routes) as proxy:
        with connect(f"ws://127.0.0.1:{proxy.port}/ws/chat") as warmup:
            warmup.send(b"w" * 65536)
            warmup.recv(timeout=5)
        baseline = proxy.peak_rss_mib()
        with connect(f"ws://127.0.0.1:{proxy.port}/ws/flood", max_size=None, max_queue=4, close_timeout=1) as ws:
            ws.recv(timeout=5)  # the flood has started; from now on the client reads nothing
            time.sleep(2.0)  # at loopback speed an unpaused flood would be gigabytes by now
            before, after = _flood_sent_settles(backend, 1.0)
            peak = proxy.peak_rss_mib()
            # Reading again lets the flood resume: the tunnel was paused, not broken.
            for _ in range(200):
                ws.recv(timeout=5)
            resumed = backend.flood_sent
    assert after - before <= 1 << 20, f"the backend kept sending: {before} -> {after} bytes"
    assert after < 96 << 20, f"{after >> 20} MiB left the backend while nobody read"
    assert resumed > after
    assert peak - baseline < 40, f"proxy peak RSS grew {peak - baseline:.1f} MiB over {baseline:.1f} MiB"
