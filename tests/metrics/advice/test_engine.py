"""metrics.advice.engine: drafts are checked before they are offered, ids are stable, advice in place is dropped."""
from __future__ import annotations

import pytest

from metrics.advice.context import Context
from metrics.advice.engine import _offered, advise
from metrics.advice.findings import Finding
from metrics.recommendations import recommend
from tests.support.advice_series import NOW, hourly, route

pytestmark = pytest.mark.django_db
PROOF = {"figures": {}, "range": {}, "series": [], "dashboard": ""}


def finding(patch: dict) -> Finding:
    return Finding("timeout", "users", "warning", "route users: ...", PROOF, patch=patch, fields=("read_timeout_ms",))


def test_a_rules_draft_that_fails_the_checks_is_never_offered():
    route("users")
    item = _offered(Context(NOW), finding({"read_timeout_ms": 0}))
    assert item is not None and item.draft is None
    assert item.draft_error is not None and item.draft_error.startswith("invalid: read_timeout_ms")


def test_a_draft_that_changes_nothing_drops_the_advice():
    route("users", read_timeout_ms=2000)
    assert _offered(Context(NOW), finding({"read_timeout_ms": 2000})) is None


@pytest.fixture
def slow_backend():
    route("users", (8080, 8081), read_timeout_ms=1000)
    hourly("users", "10.0.0.5:8080", 24, 300, latency=0.02)
    hourly("users", "10.0.0.5:8081", 24, 300, latency=0.2)


def test_the_id_is_stable_within_the_hour(slow_backend):
    first = advise(NOW).items[0].id
    assert advise(NOW.replace(minute=59)).items[0].id == first


def test_the_recommendations_carry_the_advice_in_template_words(slow_backend):
    texts = [r.text for r in recommend(NOW)]
    assert any(text.startswith("route users: backend 10.0.0.5:8081 answers with a p50") for text in texts), texts
