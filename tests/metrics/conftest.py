"""Fixtures of the metrics tests: the control plane's, and no traffic points left over in Redis."""
from __future__ import annotations

import pytest
from django.conf import settings

# The control-plane fixtures (users, API clients, route documents, checked routes), shared with the routes tests.
from tests.routes.conftest import (  # noqa: F401
    api,
    checked_route,
    fast_password_hashing,
    plain_user,
    route_doc,
    staff_user,
)


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
