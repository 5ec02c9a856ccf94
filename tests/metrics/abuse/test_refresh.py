"""The table a gateway process reads back: verdicts in force of enforcing routes, limits of personalized ones."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.abuse.refresh import load_table
from metrics.models import ClientLimit, Verdict
from protocols.abuse.config import AbusePolicy

pytestmark = pytest.mark.django_db
ENFORCE = AbusePolicy(mode="enforce", factor=0.5)


def verdict(client: str, *, route: str = "orders", action: str = "block", expires_in: float = 60,
            lifted: bool = False, factor: float | None = None) -> Verdict:
    now = timezone.now()
    return Verdict.objects.create(
        route=route, client=client, kind="burst", score=9.0, model_version="test", action=action, factor=factor,
        features=[{"name": "requests", "value": 90, "baseline": 10, "population": 12, "score": 9.0}],
        window_start=now - timedelta(seconds=10), window_end=now, expires_at=now + timedelta(seconds=expires_in),
        lifted_at=now if lifted else None)


def test_only_verdicts_in_force_that_act_enter_the_table():
    live = verdict("ip:1")
    verdict("ip:2", expires_in=-1)
    verdict("ip:3", lifted=True)
    verdict("ip:4", action="shadow")
    table = load_table(timezone.now(), [("orders", ENFORCE)])
    assert list(table["orders"]) == ["ip:1"]
    sanction = table["orders"]["ip:1"]
    assert (sanction.verdict_id, sanction.action, sanction.kind, sanction.feature) == (live.pk, "block", "burst",
                                                                                        "requests")


def test_a_shadow_route_reads_no_verdicts():
    verdict("ip:1")
    assert load_table(timezone.now(), [("orders", AbusePolicy())]) == {}


def test_a_lower_verdict_without_a_factor_takes_the_routes():
    verdict("ip:1", action="lower")
    assert load_table(timezone.now(), [("orders", ENFORCE)])["orders"]["ip:1"].factor == 0.5


def test_personalized_limits_are_read_only_for_routes_that_use_them():
    ClientLimit.objects.create(route="orders", client="consumer:billing", limit=30, window_s=60, learned_from=50)
    ClientLimit.objects.create(route="other", client="consumer:billing", limit=5, window_s=60, learned_from=50)
    table = load_table(timezone.now(), [("orders", AbusePolicy(personalized_limits=True)),
                                        ("other", AbusePolicy())])
    assert list(table) == ["orders"]
    sanction = table["orders"]["consumer:billing"]
    assert (sanction.limit, sanction.limit_window_s, sanction.verdict_id) == (30, 60.0, 0)


def test_routes_without_anything_to_apply_cost_no_query(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert load_table(timezone.now(), [("orders", AbusePolicy())]) == {}
