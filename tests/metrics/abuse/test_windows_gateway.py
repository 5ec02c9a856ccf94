"""Per-client counting through a real `runproxy`: the ClientWindow rows its workers write carry what each client did
on routes with an `abuse` block (refused requests included), and nothing for routes without one."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from metrics.abuse.windows import COUNTS, value_hash
from metrics.models import ClientWindow
from routes.import_export import import_config
from routes.models import ConfigState
from tests.protocols.auth.tokens import ISSUER, SECRET
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
ENV = {"RUSTA_ABUSE_WINDOW_S": "1", "RUSTA_TRUSTED_PROXIES": "127.0.0.1"}
STUFFER, SCANNER = "203.0.113.66", "203.0.113.77"
ALICE_ADDRESSES = [f"198.51.100.{index}" for index in range(1, 5)]


@dataclass
class ClientTotal:
    """One client's rows on one route, added up over windows and processes."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    path_hashes: set[str] = field(default_factory=set)
    address_hashes: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)


def totals(rows: Iterable[ClientWindow]) -> dict[tuple[str, str], ClientTotal]:
    found: dict[tuple[str, str], ClientTotal] = {}
    for row in rows:
        total = found.setdefault((row.route, row.client), ClientTotal())
        for name in COUNTS:
            total.counts[name] += getattr(row, name)
        total.path_hashes.update(row.path_hashes)
        total.address_hashes.update(row.address_hashes)
        total.sources.add(row.source)
    return found


def route(name: str, path: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": path, "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": port}], **extra}


def configure(port: int, missing_port: int) -> None:
    import_config({"version": 1, "jwt": {"secret": SECRET, "issuer": ISSUER}, "routers": [
        route("guarded", "/guarded", port, auth_required=True, abuse={"mode": "shadow"}),
        route("items", "/items/{id}", missing_port, abuse={"mode": "shadow"}),
        route("plain", "/plain", port),
    ]}, actor=None, source="test")


def token(subject: str) -> str:
    return pyjwt.encode({"sub": subject, "iss": ISSUER, "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")


def get(gateway: Gateway, path: str, address: str, **headers: str) -> int:
    # A new connection each time, so that the kernel spreads requests over the workers.
    return http("GET", gateway.url + path, headers={"X-Forwarded-For": address, "Connection": "close",
                                                    **headers})[0]


def test_each_clients_refusals_scans_and_addresses_land_in_its_rows(tmp_path):
    with UpstreamServer() as upstream, UpstreamServer() as missing:
        missing.fail(404)
        configure(upstream.port, missing.port)
        gateway = start_gateway(tmp_path, extra_env=ENV)
        try:
            gateway.wait_version(ConfigState.objects.get(pk=1).version)
            guesses = [get(gateway, "/guarded", STUFFER, Authorization="Bearer not.a.token") for _ in range(5)]
            assert guesses == [401] * 5
            alice = token("alice")
            assert [get(gateway, "/guarded", address, Authorization=f"Bearer {alice}")
                    for address in ALICE_ADDRESSES] == [200] * 4
            assert [get(gateway, f"/items/{index}", SCANNER) for index in range(6)] == [404] * 6
            assert [get(gateway, "/plain", STUFFER) for _ in range(3)] == [200] * 3
        finally:
            assert gateway.stop() == 0  # a clean stop writes the last window
    found = totals(ClientWindow.objects.all())
    assert set(found) == {("guarded", f"ip:{STUFFER}"), ("guarded", "sub:alice"), ("items", f"ip:{SCANNER}")}

    stuffer = found[("guarded", f"ip:{STUFFER}")]
    assert (stuffer.counts["requests"], stuffer.counts["auth_failures"], stuffer.counts["errors_4xx"]) == (5, 5, 5)
    assert stuffer.address_hashes == set()  # an address-named client's address is its name

    alice_total = found[("guarded", "sub:alice")]
    assert (alice_total.counts["requests"], alice_total.counts["auth_failures"]) == (4, 0)
    assert alice_total.address_hashes == {value_hash(address) for address in ALICE_ADDRESSES}

    scanner = found[("items", f"ip:{SCANNER}")]
    assert (scanner.counts["requests"], scanner.counts["not_found"]) == (6, 6)
    assert scanner.path_hashes == {value_hash(f"/items/{index}") for index in range(6)}
    assert scanner.counts["bytes_out"] > 0
    assert all(row.window_s == 1 for row in ClientWindow.objects.all())


def served_by_worker(tmp_path: Path, route_name: str) -> dict[str, int]:
    """Requests of `route_name` each running worker (by pid) counted, from its metrics file (written each second)."""
    counts: dict[str, int] = {}
    for path in tmp_path.glob("var/instances/*/metrics-proc/*.json"):
        if not path.stem.isdigit():
            continue
        requests = json.loads(path.read_text())["totals"]["requests"]
        counts[path.stem] = sum(value for key, value in requests.items() if key.split("\x1f")[0] == route_name)
    return counts


def test_two_workers_each_write_the_rows_of_the_requests_they_served(tmp_path):
    with UpstreamServer() as upstream, UpstreamServer() as missing:
        configure(upstream.port, missing.port)
        gateway = start_gateway(tmp_path, workers=2, extra_env=ENV)
        try:
            gateway.wait_version(ConfigState.objects.get(pk=1).version)
            sent = 0
            # The kernel decides which worker accepts a connection: send until both have served some.
            with ThreadPoolExecutor(8) as pool:
                while sent < 400:
                    assert list(pool.map(lambda _: get(gateway, "/guarded", STUFFER), range(20))) == [401] * 20
                    sent += 20
                    time.sleep(1.1)
                    if len([count for count in served_by_worker(tmp_path, "guarded").values() if count]) == 2:
                        break
            served = served_by_worker(tmp_path, "guarded")
            assert sum(served.values()) == sent and len(served) == 2
        finally:
            assert gateway.stop() == 0
    rows = ClientWindow.objects.filter(route="guarded", client=f"ip:{STUFFER}")
    written: dict[str, int] = {}
    for row in rows:
        pid = row.source.split(":")[-2]  # host:pid:start (metrics.history.process_source)
        written[pid] = written.get(pid, 0) + row.requests
    assert written == served
