"""`manage.py rundns`: a real process forwarding to the dns routes' resolvers, following changes, stopping on TERM."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dns.rcode
import pytest

from routes.models import Route
from routes.services import save_route
from tests.protocols.dns.conftest import ask
from tests.protocols.dns.servers import ZoneServer
from tests.support import gateway

pytestmark = pytest.mark.django_db(transaction=True)


def dns_route(server: ZoneServer, name: str = "resolvers") -> Route:
    doc = {"name": name, "protocol": "dns", "external_path": f"/{name}", "methods": ["POST"],
           "backends": [{"host": "127.0.0.1", "port": server.port}]}
    return save_route(doc, actor=None, source="test")


@pytest.fixture
def start_rundns(tmp_path: Path) -> Iterator[Callable[[], tuple[subprocess.Popen[str], int]]]:
    """Starts `manage.py rundns --port 0` on the test database; returns the process and the port it reports."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], int]:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": gateway.test_database_url(),
            "RUSTA_VAR_DIR": str(tmp_path / "var"),
            "RUSTA_SECRET_KEY": "test-only-secret-key-not-used-anywhere-else-0123456789",
            "RUSTA_RELOAD_INTERVAL": "0.2",
            "PYTHONUNBUFFERED": "1",
        })
        log = tmp_path / "rundns.log"
        with log.open("wb") as stderr:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "manage.py", "rundns", "--host", "127.0.0.1", "--port", "0"],
                cwd=gateway.ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, f"rundns said {line!r}; log: {log.read_text()}"
        return process, int(match.group(1))

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_rundns_forwards_to_the_dns_routes_resolvers_and_exits_0_on_sigterm(upstream, start_rundns):
    process, port = start_rundns()
    assert ask(port, "www.example.test").rcode() == dns.rcode.SERVFAIL  # no dns route yet
    dns_route(upstream)
    deadline = time.monotonic() + 5
    while ask(port, "n1.example.test").rcode() != dns.rcode.NOERROR:
        assert time.monotonic() < deadline, "the new dns route was not used within 5 s"
        time.sleep(0.1)
    assert ask(port, "www.example.test", tcp=True).answer[0][0].address == "192.0.2.1"
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0


def test_rundns_follows_a_change_of_resolver(upstream, start_rundns):
    route = dns_route(upstream)
    _, port = start_rundns()
    assert ask(port, "n1.example.test").rcode() == dns.rcode.NOERROR
    with ZoneServer() as second:
        save_route({"backends": [{"host": "127.0.0.1", "port": second.port}]}, actor=None, source="test",
                   route=route, partial=True)
        deadline = time.monotonic() + 5
        for i in range(2, 200):
            ask(port, f"n{i}.example.test")
            if second.count():
                break
            assert time.monotonic() < deadline, "the changed resolver was not used within 5 s"
            time.sleep(0.05)
        assert second.count() > 0
