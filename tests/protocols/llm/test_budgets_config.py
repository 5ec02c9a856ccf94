"""Budget blocks compile or are refused by path; calendar windows; money in exact micro-units; counter keys."""
from __future__ import annotations

import calendar

import pytest

from protocols.block_errors import BlockError
from protocols.llm.budgets import BudgetPolicy, Prices, Subject, counter_key, format_micros, to_micros, window


def utc(*parts: int) -> int:
    return calendar.timegm((*parts, *(0,) * (6 - len(parts))))


def errors_of(block: object) -> dict[str, list[str]]:
    with pytest.raises(BlockError) as caught:
        BudgetPolicy.from_config(block, name="route:chat")
    return caught.value.errors


def test_a_token_limit_block_becomes_one_counter_per_window():
    policy = BudgetPolicy.from_config(
        {"token_limits": {"tokens_per_minute": 10_000, "tokens_per_day": 1_000_000, "per": ["model", "consumer"]}},
        name="route:chat")
    assert [(m.label, m.period, m.limit, m.per) for m in policy.meters] == [
        ("tokens_per_minute", "minute", 10_000, ("consumer", "model")),
        ("tokens_per_day", "day", 1_000_000, ("consumer", "model")),
    ]
    assert policy.on_store_error == "open" and policy.currency == ""


def test_a_budget_block_keeps_its_amount_in_micro_units():
    policy = BudgetPolicy.from_config({"budgets": [{"amount": 25.5, "currency": "EUR", "period": "week"}]})
    (meter,) = policy.meters
    assert (meter.kind, meter.limit, meter.currency, meter.period, meter.per) == (
        "money", 25_500_000, "EUR", "week", ("consumer",))
    assert policy.currency == "EUR"
    assert meter.describe() == "25.5 EUR per week per consumer"


def test_unknown_keys_are_refused_at_their_path():
    assert errors_of({"token_limits": [{"tokens_per_minute": 5, "tokens_per_hour": 9}], "budget": {}}) == {
        "budget": ["Unknown key; known: budgets, on_store_error, token_limits."],
        "token_limits[0].tokens_per_hour": ["Unknown key; known: per, tokens_per_day, tokens_per_minute."],
    }


def test_every_mistake_of_a_block_is_reported_at_once_by_path():
    errors = errors_of({
        "token_limits": [{"tokens_per_minute": 0, "per": ["consumer", "tenant"]}, {"per": []}],
        "budgets": {"amount": 1.0000001, "currency": "usd", "period": "year"},
        "on_store_error": "maybe",
    })
    assert set(errors) == {"token_limits[0].tokens_per_minute", "token_limits[0].per[1]", "token_limits[1]",
                           "budgets.amount", "budgets.currency", "budgets.period", "on_store_error"}
    assert errors["budgets.amount"] == ["At most 6 decimals (micro-units)."]
    assert errors["token_limits[1]"] == ["Needs tokens_per_minute and/or tokens_per_day."]


def test_a_budget_needs_an_amount_above_zero():
    assert "budgets[0].amount" in errors_of({"budgets": [{"currency": "USD"}]})
    assert errors_of({"budgets": [{"amount": 0}]}) == {"budgets[0].amount": ["Must be from more than 0 to 1000000000."]}
    assert errors_of({"budgets": [{"amount": "25"}]}) == {"budgets[0].amount": ["Must be a number."]}


def test_two_limits_counting_the_same_window_and_scope_are_refused():
    errors = errors_of({"token_limits": [{"tokens_per_minute": 5}, {"tokens_per_minute": 9, "per": "consumer"}]})
    assert list(errors) == ["token_limits[1].tokens_per_minute"]


def test_budgets_of_one_block_share_one_currency():
    errors = errors_of({"budgets": [{"amount": 1, "currency": "USD", "period": "day"},
                                    {"amount": 1, "currency": "EUR", "period": "month"}]})
    assert errors == {"budgets": ["Budgets of one block share one currency; found EUR, USD."]}


def test_a_block_that_is_no_object_is_refused():
    assert errors_of([]) == {"": ["Must be an object with token_limits and/or budgets."]}
    assert errors_of({"token_limits": 5}) == {"token_limits": ["Must be an object or a list of objects."]}


def test_windows_follow_the_utc_calendar():
    moment = utc(2026, 3, 15, 12, 34, 56) + 0.75  # a Sunday
    assert window("minute", moment) == (utc(2026, 3, 15, 12, 34), utc(2026, 3, 15, 12, 35))
    assert window("day", moment) == (utc(2026, 3, 15), utc(2026, 3, 16))
    assert window("week", moment) == (utc(2026, 3, 9), utc(2026, 3, 16))  # Monday to Monday
    assert window("month", moment) == (utc(2026, 3, 1), utc(2026, 4, 1))
    assert window("month", utc(2026, 12, 31, 23, 59, 59)) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert window("month", utc(2028, 2, 29, 8)) == (utc(2028, 2, 1), utc(2028, 3, 1))
    # A boundary belongs to the window it starts.
    assert window("week", utc(2026, 3, 16)) == (utc(2026, 3, 16), utc(2026, 3, 23))
    assert window("minute", utc(2026, 3, 15, 12, 35)) == (utc(2026, 3, 15, 12, 35), utc(2026, 3, 15, 12, 36))


def test_counter_keys_name_the_policy_the_window_and_the_scope():
    policy = BudgetPolicy.from_config({
        "token_limits": [{"tokens_per_minute": 10, "per": ["consumer", "model"]}, {"tokens_per_day": 9, "per": []}],
        "budgets": {"amount": 25, "per": ["consumer", "route"]},
    }, name="route:chat")
    subject = Subject("alice", "chat", "gpt-4o")
    assert [counter_key(policy.name, m, subject) for m in policy.meters] == [
        "route:chat|tokens:minute|consumer=alice|model=gpt-4o",
        "route:chat|tokens:day|all",
        "route:chat|money:USD:month|consumer=alice|route=chat",
    ]
    anonymous = counter_key(policy.name, policy.meters[0], Subject(None, "chat", "a|b"))
    assert anonymous.startswith("route:chat|tokens:minute|consumer=-|model=#")  # "|" in a name is hashed


def test_prices_turn_tokens_into_exact_micro_units():
    prices = Prices.from_config({"input": 0.15, "output": 0.6, "cached_input": 0.075})
    assert (prices.input, prices.output, prices.cached_input) == (150_000, 600_000, 75_000)
    # 1000 * 0.15 + 500 * 0.6 + 2000 * 0.075 micro-dollars per token-million = 600 micro-dollars exactly.
    assert prices.cost(1000, 500, 2000) == 600
    assert prices.max_cost(1000, 4000) == 150 + 2400


def test_a_priced_request_never_costs_zero():
    prices = Prices.from_config({"input": 0.1, "output": 0.4})
    assert prices.cost(1, 0) == 1  # 0.1 micro-dollars, rounded up once per request
    assert prices.cost(7, 3) == 2  # 0.7 + 1.2 = 1.9 -> 2, not 1 + 2
    assert prices.cost(0, 0) == 0


def test_cached_input_costs_the_input_price_unless_given():
    assert Prices.from_config({"input": 3, "output": 15}).cached_input == 3_000_000


def test_price_mistakes_are_refused_by_path():
    with pytest.raises(BlockError) as caught:
        Prices.from_config({"input": -1, "outptu": 2}, "targets[0].price_per_million")
    assert set(caught.value.errors) == {"targets[0].price_per_million.input", "targets[0].price_per_million.outptu"}


def test_amounts_are_read_from_their_decimal_text_without_float_drift():
    assert to_micros(0.1, "x") + to_micros(0.2, "x") == to_micros(0.3, "x") == 300_000
    assert to_micros(1e-6, "x") == 1
    assert format_micros(25_500_000) == "25.5" and format_micros(3) == "0.000003" and format_micros(7_000_000) == "7"
