"""Fixtures and collection rules shared by the whole suite."""
from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

# The data plane's and the bench's tests run once, in the embedded suite, unless their module reaches a database,
# Redis or a gateway process (which reads DATABASE_URL and REDIS_URL): nothing else in them can differ between the
# two suites. .ci/test-suites marks the PostgreSQL + Redis run with RUSTA_TEST_SUITE=scaled.
_ONCE = ("tests/protocols/", "tests/bench/")
_REACHES_SHARED_STATE = re.compile(
    r"REDIS_URL|redis_url|DATABASE_URL|django_db|start_gateway|runproxy|ServerProcess|[Rr]edis")
ROOT = Path(__file__).resolve().parent.parent


@cache
def _reaches_shared_state(path: Path) -> bool:
    return bool(_REACHES_SHARED_STATE.search(path.read_text(encoding="utf-8")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("RUSTA_TEST_SUITE") != "scaled":
        return
    kept, once = [], []
    for item in items:
        path = Path(str(item.path))
        relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
        if relative.startswith(_ONCE) and not _reaches_shared_state(path):
            once.append(item)
        else:
            kept.append(item)
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = kept
