"""The proxy listener's /ready and /health judge staleness by the HealthLimits in its ProxyOptions (runproxy builds
them from RUSTA_READY_STALE_AFTER and RUSTA_BACKGROUND_STALE_AFTER), not by a module-wide value."""
from __future__ import annotations

import time

from protocols.health import HealthLimits
from tests.support.proxy import ProxyServer, route


def serving(limits: HealthLimits | None = None, *, database_age: float = 0.0,
            background_age: float = 0.0) -> ProxyServer:
    """A proxy whose table watcher has watched for an hour, last reached the database `database_age` seconds ago
    and last read a background report `background_age` seconds ago."""
    options = {} if limits is None else {"health": limits}
    proxy = ProxyServer([route("api", "/api", 9)], **options)
    now = time.time()
    proxy.state.watching_since = now - 3600
    proxy.state.source_ok_at = now - database_age
    proxy.state.background_at = now - background_age
    return proxy


def test_ready_is_unavailable_once_the_database_is_older_than_the_proxys_limit():
    with serving(database_age=5) as default, \
            serving(HealthLimits(ready_stale_after=2.0), database_age=5) as strict:
        assert default.call("GET", "/ready").status == 200  # within the default 10 s
        reply = strict.call("GET", "/ready")
    assert reply.status == 503
    assert reply.json()["checks"]["database"] is False


def test_health_is_degraded_once_the_background_work_is_older_than_the_proxys_limit():
    with serving(background_age=5) as default, \
            serving(HealthLimits(background_stale_after=2.0), background_age=5) as strict:
        assert default.call("GET", "/health").json()["status"] == "ok"  # within the default 30 s
        reply = strict.call("GET", "/health")
    assert (reply.status, reply.json()["status"]) == (200, "degraded")
