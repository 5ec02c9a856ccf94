"""Fixtures of the advice tests: the control plane's, and a clean cache (the LLM's answers and outcome counts)."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.metrics.conftest import no_traffic_points_left_in_redis  # noqa: F401
from tests.routes.conftest import fast_password_hashing  # noqa: F401


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()
