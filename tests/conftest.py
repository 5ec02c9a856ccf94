"""Fixtures and collection rules shared by the whole suite."""
from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

# The data plane's and the bench's tests run in one suite only, unless their module reaches a database, Redis or a
# gateway process (which reads DATABASE_URL and REDIS_URL): nothing else in them can differ between the two suites.
# .ci/test-suites names the two runs it starts side by side with RUSTA_TEST_SUITE: `scaled` (PostgreSQL + Redis)
# takes the listener's tests, `embedded` (SQLite) the others, which evens out the two runs' length; a run with
# neither name (one suite alone, a developer's pytest) runs everything.
_ONCE = ("tests/protocols/", "tests/bench/")
_IN_SCALED = ("tests/protocols/http/test_listener_", "tests/protocols/http/test_h2")
_REACHES_SHARED_STATE = re.compile(
    r"REDIS_URL|redis_url|DATABASE_URL|django_db|start_gateway|runproxy|ServerProcess|[Rr]edis")
ROOT = Path(__file__).resolve().parent.parent


@cache
def _reaches_shared_state(path: Path) -> bool:
    return bool(_REACHES_SHARED_STATE.search(path.read_text(encoding="utf-8")))


def _suite_of(path: Path) -> str | None:
    """The one suite a test module runs in, or None when it runs in both."""
    relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
    if not relative.startswith(_ONCE) or _reaches_shared_state(path):
        return None
    return "scaled" if relative.startswith(_IN_SCALED) else "embedded"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite = os.environ.get("RUSTA_TEST_SUITE")
    if suite not in ("embedded", "scaled"):
        return
    kept: list[pytest.Item] = []
    elsewhere: list[pytest.Item] = []
    for item in items:
        (elsewhere if _suite_of(Path(str(item.path))) not in (None, suite) else kept).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept
