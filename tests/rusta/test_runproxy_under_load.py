"""Nothing is lost under continuous load: not through twenty configuration changes, not through a SIGTERM."""
from __future__ import annotations

import http.client
import signal
import threading
import time
from collections import Counter

import pytest

from routes.services import save_route
from tests.support.gateway import http as fetch
from tests.support.gateway import start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 4


def echo_route(*ports: int) -> dict:
    return {"name": "echo", "external_path": "/echo", "methods": ["GET", "POST"],
            "backends": [{"host": "http://127.0.0.1", "port": port} for port in ports]}


class Load:
    """CLIENTS threads, each sending numbered POSTs on its own keep-alive connection until stopped; every outcome
    is kept by its number: the status, or the error that ended the exchange."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: dict[str, object] = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _client(self, client: int) -> None:
        conn: http.client.HTTPConnection | None = None
        sent = 0
        while not self.stop.is_set():
            sent += 1
            number = f"{client}-{sent}"
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/echo", body=number.encode(), headers={"X-Seq": number})
                response = conn.getresponse()
                response.read()
                self.outcomes[number] = response.status
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self.outcomes[number] = type(exc).__name__
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def answered(self) -> Counter[object]:
        return Counter(self.outcomes.values())


def seen_numbers(*upstreams: UpstreamServer) -> set[str]:
    return {request.header("x-seq")[0] for upstream in upstreams for request in upstream.requests
            if request.header("x-seq")}


def test_twenty_configuration_changes_under_load_fail_no_request(tmp_path):
    with UpstreamServer() as first, UpstreamServer() as second:
        route = save_route(echo_route(first.port), actor=None, source="test")
        gateway = start_gateway(tmp_path, workers=2)
        try:
            with Load(gateway.port) as load:
                time.sleep(0.3)
                for change in range(20):
                    ports = [(first.port,), (second.port,), (first.port, second.port)][change % 3]
                    save_route({"backends": [{"host": "http://127.0.0.1", "port": port} for port in ports],
                                "read_timeout_ms": 30000 + change},
                               actor=None, source="test", route=route, partial=True)
                    time.sleep(0.15)
                time.sleep(0.5)
        finally:
            assert gateway.stop() == 0
    outcomes = load.answered()
    assert sum(outcomes.values()) > 100
    assert set(outcomes) == {200}, f"requests that failed during the changes: {outcomes}"
    assert len(second.requests) > 0 and len(first.requests) > 0  # the changes were really served
    # Every request the clients sent reached a backend exactly once.
    assert seen_numbers(first, second) == set(load.outcomes)
    assert len(first.requests) + len(second.requests) == len(load.outcomes)


def test_sigterm_under_continuous_load_loses_no_request_it_accepted(tmp_path):
    with UpstreamServer() as upstream:
        upstream.delay_ms = 20  # requests are in flight when the signal arrives
        save_route(echo_route(upstream.port), actor=None, source="test")
        gateway = start_gateway(tmp_path, workers=2, grace=10)
        with Load(gateway.port) as load:
            time.sleep(1.0)
            gateway.process.send_signal(signal.SIGTERM)
            assert gateway.process.wait(30) == 0
        before_stop = {number for number, outcome in load.outcomes.items() if outcome == 200}
        reached = seen_numbers(upstream)
    assert len(before_stop) > 20
    # A request the gateway forwarded was answered to its client; one that failed never reached the backend.
    failed = {number for number, outcome in load.outcomes.items() if outcome != 200}
    assert reached == before_stop, f"forwarded but not answered: {sorted(reached - before_stop)[:5]}"
    assert not failed & reached
    # After the stop nothing answers any more.
    with pytest.raises(OSError):
        fetch("GET", gateway.url + "/live", timeout=2)
