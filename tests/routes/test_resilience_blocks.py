"""routes.resilience_blocks: what the retry, health_check and circuit_breaker blocks may say, the messages for
errors, and that the API refuses an unknown key in them by path."""
from __future__ import annotations

import pytest

from routes.block_keys import unknown_key_message
from routes.models import Route
from routes.resilience_blocks import CIRCUIT_BREAKER_DEFAULTS, HEALTH_CHECK_DEFAULTS, RULES, health_check_settings
from routes.validation import normalize_route, unknown_keys, validate_route


def errors_of(data):
    return validate_route(normalize_route(data))


FULL_HEALTH_CHECK = {"interval_s": 1, "timeout_ms": 500, "healthy_threshold": 1, "unhealthy_threshold": 2,
                     "healthy_statuses": [200, 204]}
FULL_BREAKER = {"enabled": True, "failure_threshold": 3, "failure_ratio": 0.5, "window_s": 30, "min_requests": 10,
                "open_s": 5, "half_open_requests": 2, "success_threshold": 1, "failure_statuses": [500, 503]}
FULL_RETRY = {"max_retries": 2, "initial_backoff_ms": 10, "max_backoff_ms": 100, "backoff_multiplier": 2.0,
              "retry_on_status_codes": [503], "retry_on_connection_error": True, "retry_non_idempotent": False,
              "budget_ratio": 0.2, "budget_window_s": 10, "budget_min_per_s": 0.5}


def test_complete_resilience_blocks_have_no_errors(route_doc):
    doc = route_doc(health_check=FULL_HEALTH_CHECK, circuit_breaker=FULL_BREAKER, retry=FULL_RETRY,
                    total_timeout_ms=2500, load_balancing_strategy="latency_aware")
    assert errors_of(doc) == {}
    assert unknown_keys(doc) == []


def test_empty_blocks_take_every_default(route_doc):
    assert errors_of(route_doc(health_check={}, circuit_breaker={}, retry={})) == {}


@pytest.mark.parametrize(("key", "value"), [
    ("interval_s", 0), ("interval_s", 3601), ("interval_s", 1.5), ("timeout_ms", 49), ("timeout_ms", 60_001),
    ("healthy_threshold", 0), ("unhealthy_threshold", 101), ("healthy_statuses", []),
    ("healthy_statuses", [200, 600]), ("healthy_statuses", "200"), ("interval_s", True),
])
def test_a_health_check_value_out_of_range_is_named_by_path(route_doc, key, value):
    assert list(errors_of(route_doc(health_check={key: value}))) == [f"health_check.{key}"]


@pytest.mark.parametrize(("key", "value"), [
    ("enabled", "yes"), ("failure_threshold", 0), ("failure_ratio", 1.5), ("failure_ratio", "half"),
    ("window_s", 3601), ("min_requests", 0), ("open_s", 0), ("half_open_requests", 1001),
    ("success_threshold", 0), ("failure_statuses", [404]), ("failure_statuses", 503),
])
def test_a_circuit_breaker_value_out_of_range_is_named_by_path(route_doc, key, value):
    assert list(errors_of(route_doc(circuit_breaker={key: value}))) == [f"circuit_breaker.{key}"]


@pytest.mark.parametrize(("key", "value"), [
    ("retry_non_idempotent", 1), ("budget_ratio", 1.2), ("budget_ratio", -0.1), ("budget_window_s", 0),
    ("budget_window_s", 601), ("budget_min_per_s", 1001), ("budget_min_per_s", "many"),
])
def test_a_retry_budget_value_out_of_range_is_named_by_path(route_doc, key, value):
    assert list(errors_of(route_doc(retry={key: value}))) == [f"retry.{key}"]


def test_the_messages_say_what_is_allowed(route_doc):
    errors = errors_of(route_doc(health_check={"interval_s": 0, "healthy_statuses": []},
                                 circuit_breaker={"failure_ratio": 2, "failure_statuses": [404]},
                                 retry={"budget_ratio": 3}))
    assert errors == {
        "health_check.interval_s": ["Must be a whole number from 1 to 3600."],
        "health_check.healthy_statuses": ["Must be a non-empty list of HTTP status codes (100 to 599)."],
        "circuit_breaker.failure_ratio": ["Must be null or a number from 0 to 1."],
        "circuit_breaker.failure_statuses": ["Must be a list of 5xx HTTP status codes (500 to 599)."],
        "retry.budget_ratio": ["Must be a number from 0 to 1."],
    }


def test_a_block_that_is_not_an_object_is_refused(route_doc):
    errors = errors_of(route_doc(health_check=[1], circuit_breaker="on"))
    assert errors == {"health_check": ["Must be an object or null."], "circuit_breaker": ["Must be an object or null."]}


def test_a_null_key_takes_its_default(route_doc):
    assert errors_of(route_doc(circuit_breaker={"failure_ratio": None, "open_s": None})) == {}


MISSPELLED = [("retry", "max_retires"), ("health_check", "interval"), ("circuit_breaker", "treshold")]


@pytest.mark.parametrize(("block", "key"), MISSPELLED)
def test_a_misspelled_key_is_refused_by_path_naming_the_known_keys(route_doc, block, key):
    errors = errors_of(route_doc(**{block: {key: 3}}))
    assert errors == {f"{block}.{key}": [unknown_key_message(block, key, frozenset(RULES[block]))]}
    assert errors[f"{block}.{key}"][0].startswith(f"Unknown key; {block} knows {', '.join(sorted(RULES[block]))}.")


def test_keys_starting_with_an_underscore_are_notes_not_keys(route_doc):
    assert errors_of(route_doc(retry={"_comment": "x"}, health_check={"_note": 1}, circuit_breaker={"_": 2})) == {}


def test_the_earlier_gateways_retry_keys_are_known(route_doc):
    retry = {"max_retries": 3, "initial_backoff_ms": 100, "max_backoff_ms": 5000, "backoff_multiplier": 2.0,
             "retry_on_status_codes": [502, 503, 504], "retry_on_connection_error": True}
    assert errors_of(route_doc(retry=retry)) == {}


@pytest.mark.django_db
@pytest.mark.parametrize(("block", "key"), MISSPELLED)
def test_the_api_refuses_a_misspelled_key_on_create_and_saves_nothing(api, route_doc, block, key):
    response = api.post("/api/routes/", route_doc(**{block: {key: 3}}), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"{block}.{key}"]
    assert not Route.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("block", "key"), MISSPELLED)
def test_the_api_refuses_a_misspelled_key_on_patch_and_changes_nothing(api, route_doc, block, key):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    response = api.patch(f"/api/routes/{route_id}/", {block: {key: 3}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"{block}.{key}"]
    assert getattr(Route.objects.get(), block) is None


def test_unknown_keys_in_the_new_blocks_are_reported_by_path(route_doc):
    data = route_doc(health_check={"interval": 5, "_note": "x"}, circuit_breaker={"threshold": 3},
                     retry={"budget": 0.2})
    assert sorted(unknown_keys(data, "routers[0]")) == [
        "routers[0].circuit_breaker.threshold", "routers[0].health_check.interval", "routers[0].retry.budget",
    ]


def test_the_total_timeout_is_zero_by_default_and_bounded(route_doc):
    assert normalize_route(route_doc())["total_timeout_ms"] == 0
    assert list(errors_of(route_doc(total_timeout_ms=-1))) == ["total_timeout_ms"]
    assert list(errors_of(route_doc(total_timeout_ms="1s"))) == ["total_timeout_ms"]


def test_latency_aware_is_a_strategy(route_doc):
    assert errors_of(route_doc(load_balancing_strategy="latency_aware")) == {}


def test_health_check_settings_fill_in_the_defaults():
    assert health_check_settings(None) == HEALTH_CHECK_DEFAULTS
    assert health_check_settings({"interval_s": 1, "timeout_ms": None}) == {**HEALTH_CHECK_DEFAULTS, "interval_s": 1}
    assert HEALTH_CHECK_DEFAULTS == {"interval_s": 5, "timeout_ms": 2000, "healthy_threshold": 2,
                                     "unhealthy_threshold": 3, "healthy_statuses": None}
    assert CIRCUIT_BREAKER_DEFAULTS["failure_statuses"] == [502, 503, 504]
