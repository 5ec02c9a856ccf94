"""Fixtures the proxy listener's tests share: one backend per module, and the errors the gateway logs."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support.errorlog import ErrorLog
from tests.support.upstream import UpstreamServer


# One backend per module (a file may define its own): tests count what it received before and after.
@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    loggers = [logging.getLogger("protocols"), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)
