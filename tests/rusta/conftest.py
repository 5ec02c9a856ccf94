"""Fixtures shared by the tests that drive a real `runproxy`."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.upstream import UpstreamServer


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    """A real HTTP backend on loopback that records what it received."""
    with UpstreamServer() as server:
        yield server
