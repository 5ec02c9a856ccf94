"""Backend discovery on /metrics: each worker's lookups summed, the addresses in use and the times shown once, the
text accepted by promtool, and a real `runproxy --workers 2` resolving a name from a DNS server on loopback."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from metrics import exposition, procfiles
from metrics.procfiles import Combined
from protocols.recorder import Totals
from routes.services import save_route
from tests.metrics.test_exposition import PROMTOOL, needs_promtool, promtool_check
from tests.metrics.test_procfiles import dead_pid
from tests.protocols.dns.servers import ZoneServer
from tests.protocols.test_discovery_proxy import NAME, a_zone
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.upstream import UpstreamServer


def worker(ok: int, failed: int, addresses: int, changed_at: float, resolved_at: float) -> dict[str, object]:
    """One worker's discovery section (protocols.discovery.figures' shape) for route api and NAME."""
    return {"lookups": [["api", NAME, "ok", ok], ["api", NAME, "timeout", failed]],
            "names": [["api", NAME, addresses, changed_at, resolved_at]]}


def combined_of(tmp_path: Path, *sections: tuple[int, dict[str, object]]) -> Combined:
    for pid, section in sections:
        procfiles.write(tmp_path, Totals(), [], 1.0, pid=pid, discovery=section)
    return procfiles.combined(tmp_path)


def test_the_workers_lookups_add_up_and_a_name_shows_the_most_addresses_and_latest_times(tmp_path):
    combined = combined_of(tmp_path, (os.getpid(), worker(5, 1, 2, 100.0, 150.0)),
                           (os.getppid(), worker(4, 0, 3, 120.0, 149.0)))
    assert combined.discovery == {
        "lookups": [["api", NAME, "ok", 9], ["api", NAME, "timeout", 1]],
        "names": [["api", NAME, 3, 120.0, 150.0]],
    }


def test_a_dead_workers_lookups_are_kept_but_not_its_addresses(tmp_path):
    first = combined_of(tmp_path, (dead_pid(), worker(7, 2, 9, 500.0, 500.0)),
                        (os.getpid(), worker(1, 0, 1, 100.0, 100.0)))
    second = procfiles.combined(tmp_path)
    for combined in (first, second):
        assert combined.discovery["lookups"] == [["api", NAME, "ok", 8], ["api", NAME, "timeout", 2]]
        assert combined.discovery["names"] == [["api", NAME, 1, 100.0, 100.0]]


def test_a_worker_stopping_cleanly_keeps_its_lookups(tmp_path):
    combined_of(tmp_path, (os.getpid(), worker(3, 0, 1, 100.0, 100.0)))
    procfiles.remove(tmp_path, pid=os.getpid())
    assert procfiles.combined(tmp_path).discovery == {
        "lookups": [["api", NAME, "ok", 3], ["api", NAME, "timeout", 0]], "names": []}


def discovery_combined() -> Combined:
    return Combined(workers=1, discovery={
        "lookups": [["api", NAME, "nxdomain", 2], ["api", NAME, "ok", 40]],
        "names": [["api", NAME, 3, 1700000000.25, 1700000100.5], ["new", "_http._tcp.new.test", 0, None, None]],
    })


def test_every_discovery_family_is_exposed_with_its_labels():
    lines = exposition.render(discovery_combined(), "1").splitlines()
    for line in (
        f'rusta_discovery_lookups_total{{route="api",name="{NAME}",outcome="ok"}} 40',
        f'rusta_discovery_lookups_total{{route="api",name="{NAME}",outcome="nxdomain"}} 2',
        f'rusta_discovery_addresses{{route="api",name="{NAME}"}} 3',
        'rusta_discovery_addresses{route="new",name="_http._tcp.new.test"} 0',
        f'rusta_discovery_last_change_timestamp_seconds{{route="api",name="{NAME}"}} 1700000000.25',
        f'rusta_discovery_last_success_timestamp_seconds{{route="api",name="{NAME}"}} 1700000100.5',
    ):
        assert line in lines, line
    assert not [line for line in lines if "timestamp_seconds" in line and 'route="new"' in line]  # never resolved


def test_the_discovery_families_pass_promtool():
    needs_promtool()
    result = promtool_check(exposition.render(discovery_combined(), "1"))
    assert result.returncode == 0, result.stdout + result.stderr


# --- A real gateway ------------------------------------------------------------------------------------------------

def scrape(gateway: Gateway) -> str:
    status, _, body = http("GET", gateway.admin_url + "/metrics", headers={"Connection": "close"})
    assert status == 200
    return body.decode()


def value(text: str, family: str, outcome: str | None = None) -> float | None:
    """The sample of `family` for route api and NAME (and `outcome`), None when there is none."""
    labels = f'route="api",name="{NAME}"' + (f',outcome="{outcome}"' if outcome else "")
    found = re.search(rf"^{re.escape(family + '{' + labels + '}')} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


@pytest.mark.django_db(transaction=True)
def test_a_gateway_shows_both_workers_lookups_of_a_discovered_name(tmp_path):
    with UpstreamServer() as upstream, ZoneServer(a_zone("127.0.0.1")) as dns:
        save_route({"name": "api", "external_path": "/api", "methods": ["GET"],
                    "backends": [{"host": f"http://{NAME}", "port": upstream.port,
                                  "discovery": {"type": "a", "interval_s": 0.5,
                                                "resolver": f"127.0.0.1:{dns.port}"}}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, workers=2)
        try:
            gateway.wait_version(1)
            started = time.time()
            # Each worker resolves on its own, every 0.5 s: once both have a few times, the sum is past 4.
            deadline = time.monotonic() + 15
            text = scrape(gateway)
            while (value(text, "rusta_discovery_lookups_total", "ok") or 0) < 4 and time.monotonic() < deadline:
                time.sleep(0.2)
                text = scrape(gateway)
            asked = dns.count(f"{NAME}.")
        finally:
            assert gateway.stop() == 0
    ok = value(text, "rusta_discovery_lookups_total", "ok")
    assert ok is not None and 4 <= ok and 2 * ok <= asked  # each lookup asked the DNS server an A and an AAAA
    assert value(text, "rusta_discovery_addresses") == 1
    resolved = value(text, "rusta_discovery_last_success_timestamp_seconds")
    assert resolved is not None and started - 1 <= resolved <= time.time()
    assert "rusta_metrics_workers 2" in text.splitlines()
    if PROMTOOL is not None:  # CI has it (needs_promtool): there a real scrape is always checked
        result = promtool_check(text)
        assert result.returncode == 0, result.stdout + result.stderr
