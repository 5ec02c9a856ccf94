"""rusta/server.py's worker set-up that has no socket to test it through (the runproxy tests cover the rest)."""
from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rusta.server import GC_YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_the_heap_takes_what_start_up_loaded_out_of_the_collectors_reach(restored_collector):
    survivor = [object()]  # a container alive at start-up, as Django's are
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert all(obj is not survivor for obj in gc.get_objects())  # frozen: no generation holds it


def test_settling_the_heap_makes_young_collections_rarer_and_keeps_the_older_thresholds(restored_collector):
    before = gc.get_threshold()
    settle_heap()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
