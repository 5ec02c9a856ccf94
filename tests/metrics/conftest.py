"""Fixtures of the metrics tests: routes whose backends are real loopback servers with health checks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from routes.models import Backend, Route
from routes.services import save_route

# The control-plane fixtures (users, API clients, route documents), shared with the routes tests.
from tests.routes.conftest import api, fast_password_hashing, plain_user, route_doc, staff_user  # noqa: F401


@pytest.fixture(autouse=True)
def no_traffic_points_left_in_redis():
    """In the scaled-out suite, gateways of earlier tests left 10-second points in Redis; a rollup would ingest
    them into this test's database."""
    if settings.REDIS_URL:
        from metrics.history import redis_client

        client = redis_client(settings.REDIS_URL)
        keys = list(client.scan_iter("rusta:metrics:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def checked_route() -> Callable[..., Route]:
    """A route with one backend per port, each probed at `path`; keyword arguments replace the health check."""

    def make(*ports: int, path: str = "/health", name: str = "checked", **health_check: Any) -> Route:
        # A probe's time limit well above what a busy CI machine needs to answer on loopback: a test about
        # status codes must not see a timeout instead (the hung-backend test sets its own short limit).
        check = {"interval_s": 1, "timeout_ms": 2000, "healthy_threshold": 2, "unhealthy_threshold": 2,
                 **health_check}
        return save_route({
            "name": name, "external_path": f"/{name}", "methods": ["GET"], "health_check": check,
            "backends": [{"host": "http://127.0.0.1", "port": port, "health_check_path": path} for port in ports],
        }, actor=None, source="test")

    return make


def only_backend(route: Route) -> Backend:
    return route.backends.get()
