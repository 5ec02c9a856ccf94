"""The sanctions table: built from verdicts and personalized limits, and what each sanction does to a request."""
from __future__ import annotations

import json

import pytest

from protocols.abuse.config import AbusePolicy
from protocols.abuse.sanctions import LimitRow, VerdictRow, judge, main_feature, table_of
from protocols.errors import ClientBlocked

ENFORCE = AbusePolicy(mode="enforce")
SHADOW = AbusePolicy(mode="shadow")
NOW = 1_000_000.0
FEATURES = [{"name": "requests", "value": 40, "baseline": 10, "score": 2.0},
            {"name": "auth_failures", "value": 38, "baseline": 0.5, "score": 9.5}]


def verdict(id: int = 7, action: str = "block", factor: float | None = None, expires_at: float = NOW + 60,
            client: str = "ip:10.0.0.9", route: str = "orders", kind: str = "credential_stuffing") -> VerdictRow:
    return VerdictRow(id, route, client, action, factor, expires_at, kind, FEATURES)


def test_a_block_in_force_on_an_enforcing_route_refuses_with_its_reason_and_id():
    sanction = table_of([verdict()], [])["orders"]["ip:10.0.0.9"]
    with pytest.raises(ClientBlocked) as refused:
        judge(sanction, ENFORCE, "orders", clock=lambda: NOW + 0.5)
    status, headers, body = refused.value.response("req-1")
    assert status == 429
    assert (b"retry-after", b"60") in headers
    assert (b"x-rusta-verdict", b"7") in headers
    answer = json.loads(body)
    assert answer["type"] == "client_blocked"
    assert answer["verdict_id"] == 7 and answer["verdict"] == "/api/verdicts/7/"
    assert answer["reason"] == {"kind": "credential_stuffing", "feature": "auth_failures", "value": 38,
                                "baseline": 0.5}


def test_a_shadow_route_lets_a_blocked_client_through():
    sanction = table_of([verdict()], [])["orders"]["ip:10.0.0.9"]
    assert judge(sanction, SHADOW, "orders", clock=lambda: NOW) is None


def test_an_expired_verdict_does_nothing_even_before_the_next_refresh():
    sanction = table_of([verdict(expires_at=NOW + 1)], [])["orders"]["ip:10.0.0.9"]
    assert judge(sanction, ENFORCE, "orders", clock=lambda: NOW + 1.01) is None


def test_a_lower_verdict_multiplies_the_routes_limit_by_its_factor():
    sanction = table_of([verdict(action="lower", factor=0.2)], [])["orders"]["ip:10.0.0.9"]
    change = judge(sanction, ENFORCE, "orders", clock=lambda: NOW)
    assert change is not None and change.action == "lower" and change.verdict_id == 7
    assert change.applied(10, 60.0) == (2, 60.0)
    assert change.applied(3, 60.0) == (1, 60.0)  # never below one request
    assert "lowered to 2 per 60 s by verdict 7" in change.reason(2, 60.0)


def test_a_lower_verdict_without_a_factor_takes_the_routes():
    sanction = table_of([verdict(action="lower")], [], {"orders": 0.5})["orders"]["ip:10.0.0.9"]
    change = judge(sanction, ENFORCE, "orders", clock=lambda: NOW)
    assert change is not None and change.applied(10, 60.0) == (5, 60.0)


def test_a_personalized_limit_replaces_the_routes_only_where_the_route_asks_for_it():
    sanction = table_of([], [LimitRow("orders", "consumer:billing", 4, 30.0)])["orders"]["consumer:billing"]
    personalized = AbusePolicy(personalized_limits=True)
    change = judge(sanction, personalized, "orders")
    assert change is not None and change.action == "personalized" and change.verdict_id == 0
    assert change.applied(100, 60.0) == (4, 30.0)
    assert "personalized limit of 4 per 30 s" in change.reason(4, 30.0)
    assert judge(sanction, AbusePolicy(mode="enforce"), "orders") is None


def test_a_lower_verdict_lowers_a_personalized_limit():
    table = table_of([verdict(action="lower", factor=0.5, client="consumer:billing")],
                     [LimitRow("orders", "consumer:billing", 8, 30.0)])
    change = judge(table["orders"]["consumer:billing"], AbusePolicy(mode="enforce", personalized_limits=True),
                   "orders", clock=lambda: NOW)
    assert change is not None and change.applied(100, 60.0) == (4, 30.0)


def test_of_several_verdicts_a_block_wins_then_the_lowest_factor():
    table = table_of([verdict(1, "lower", 0.5), verdict(2, "block"), verdict(3, "lower", 0.1)], [])
    assert table["orders"]["ip:10.0.0.9"].verdict_id == 2
    table = table_of([verdict(1, "lower", 0.5), verdict(3, "lower", 0.1)], [])
    assert table["orders"]["ip:10.0.0.9"].verdict_id == 3


def test_shadow_verdicts_never_enter_the_table():
    assert table_of([verdict(action="shadow")], []) == {}


def test_the_main_feature_is_the_one_that_deviated_most():
    assert main_feature(FEATURES)["name"] == "auth_failures"
    assert main_feature([]) == {}
    assert main_feature(["not a feature"]) == {}
