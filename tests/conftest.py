"""Fixtures and collection rules shared by the whole suite."""
from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

import pytest

# .ci/test-suites runs two suites side by side and names them with RUSTA_TEST_SUITE: `embedded` (SQLite) and
# `scaled` (PostgreSQL + Redis). Everything that can differ between the two runs in both; these run in one only:
# - the data plane's and the bench's modules that reach no database, Redis or gateway process (which reads
#   DATABASE_URL and REDIS_URL): nothing in them can differ;
# - the browser tests (`*_browser.py`): what a page draws and does comes from the admin's endpoints, which their
#   own tests call on both databases; the browser only adds the page's script, which is the same on both;
# - a test marked `one_suite`: its code path is another test's in the same module, which runs in both.
# The listener's, the dashboards' and the transform editor's run in `scaled`, the rest in `embedded`, which evens out
# the two runs' length.
# A run with neither name (one suite alone, a developer's pytest) runs everything.
_ONCE = ("tests/protocols/", "tests/bench/")
_IN_SCALED = ("tests/protocols/http/test_listener_", "tests/protocols/http/test_h2", "tests/metrics/dashboard/",
              "tests/routes/test_admin_transform_editor_browser.py")
_REACHES_SHARED_STATE = re.compile(
    r"REDIS_URL|redis_url|DATABASE_URL|django_db|start_gateway|runproxy|ServerProcess|[Rr]edis")
ROOT = Path(__file__).resolve().parent.parent


@cache
def _reaches_shared_state(path: Path) -> bool:
    return bool(_REACHES_SHARED_STATE.search(path.read_text(encoding="utf-8")))


def _suite_of(item: pytest.Item) -> str | None:
    """The one suite a test runs in, or None when it runs in both."""
    path = Path(str(item.path))
    relative = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
    browser = path.name.endswith("_browser.py")
    marked = item.get_closest_marker("one_suite") is not None
    if not (browser or marked) and (not relative.startswith(_ONCE) or _reaches_shared_state(path)):
        return None
    return "scaled" if relative.startswith(_IN_SCALED) else "embedded"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    suite = os.environ.get("RUSTA_TEST_SUITE")
    if suite not in ("embedded", "scaled"):
        return
    kept: list[pytest.Item] = []
    elsewhere: list[pytest.Item] = []
    for item in items:
        (elsewhere if _suite_of(item) not in (None, suite) else kept).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept
