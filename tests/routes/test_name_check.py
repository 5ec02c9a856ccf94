"""Backend host names that do not resolve are warned about, quickly, and IP literals are never looked up."""
from __future__ import annotations

import threading
import time

from routes.name_check import unresolved_backends


def doc(*hosts: str, protocol: str = "http") -> dict:
    return {"protocol": protocol, "backends": [{"host": host, "port": 8080} for host in hosts]}


def test_a_name_that_does_not_resolve_is_warned_about_by_its_field_path():
    warnings = unresolved_backends(doc("http://10.0.0.5", "http://nothing.invalid"))
    assert list(warnings) == ["backends[1].host"]
    (message,) = warnings["backends[1].host"]
    assert message.startswith("nothing.invalid does not resolve from this gateway (")


def test_a_name_that_resolves_gets_no_warning():
    assert unresolved_backends(doc("http://localhost")) == {}


def test_ip_literals_and_bare_hosts_of_other_protocols_are_handled():
    looked_up: list[str] = []
    warnings = unresolved_backends(doc("ftp://127.0.0.1", "ftp://[::1]", "ftp.example", protocol="ftp"),
                                   resolver=looked_up.append)
    assert warnings == {}
    assert looked_up == ["ftp.example"]


def test_a_name_used_by_several_backends_is_looked_up_once_and_warned_on_each():
    looked_up: list[str] = []

    def fail(host: str) -> None:
        looked_up.append(host)
        raise OSError("no route to the DNS server")

    warnings = unresolved_backends(doc("http://api.internal", "https://api.internal"), resolver=fail)
    assert looked_up == ["api.internal"]
    assert list(warnings) == ["backends[0].host", "backends[1].host"]
    assert warnings["backends[0].host"] == ["api.internal could not be looked up from this gateway (no route to "
                                            "the DNS server)"]


def test_a_lookup_that_hangs_is_given_up_after_the_timeout():
    release = threading.Event()
    started = time.monotonic()
    try:
        warnings = unresolved_backends(doc("http://slow.example"), resolver=lambda host: release.wait(5),
                                       timeout=0.1)
    finally:
        release.set()
    assert time.monotonic() - started < 1
    assert warnings == {"backends[0].host": ["slow.example did not resolve from this gateway within 0.1 s"]}
