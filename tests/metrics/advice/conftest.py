"""Fixtures of the advice tests: the control plane's, and no advice state left in the cache (the LLM's answers,
their outcome counts, the documents shown), which outlives a test's database."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.metrics.conftest import no_traffic_points_left_in_redis  # noqa: F401
from tests.routes.conftest import fast_password_hashing  # noqa: F401


def forget_advice() -> None:
    """Only the advice's keys: with Redis the cache is shared with whatever else runs against that database."""
    if not settings.REDIS_URL:
        cache.clear()  # this process's own memory
        return
    from metrics.history import redis_client

    client = redis_client(settings.REDIS_URL)
    keys = list(client.scan_iter("*rusta:advice:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def no_advice_state():
    forget_advice()
    yield
    forget_advice()
