"""The llm block compiles into an LlmPolicy (targets, guard, budgets, cache, body limit) or is refused with every
problem at its path, in the wording the rest of Rusta uses."""
from __future__ import annotations

from typing import Any

import pytest

from protocols.block_errors import BlockError, unknown_key_message
from protocols.llm.budgets import Subject
from protocols.llm.config import CACHE_KEYS, KEYS, CacheSettings, llm_policy

OPENAI = {"provider": "openai", "model": "gpt-4o-mini"}
OLLAMA = {"provider": "ollama", "model": "llama3"}
ENV = {"OPENAI_API_KEY": "sk-env-key"}


def errors_of(block: Any, environ: dict[str, str] | None = None) -> dict[str, list[str]]:
    with pytest.raises(BlockError) as caught:
        llm_policy(block, environ or ENV)
    return caught.value.errors


def test_a_block_with_one_target_takes_every_default():
    policy = llm_policy({"targets": [OPENAI]}, ENV)
    (target,) = policy.targets
    assert (target.name, target.api_key, target.api_key_env) == ("openai/gpt-4o-mini", "sk-env-key", "OPENAI_API_KEY")
    assert (policy.guard, policy.budgets, policy.cache, policy.max_body_bytes) == (None, None, None, 1_048_576)


def test_keys_are_read_from_the_environment_given_not_the_process(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-process")
    assert llm_policy({"targets": [OPENAI]}, {"OPENAI_API_KEY": "sk-given"}).targets[0].api_key == "sk-given"
    assert llm_policy({"targets": [OPENAI]}, {}).targets[0].missing_key != ""


def test_a_key_missing_from_the_environment_is_not_a_save_error():
    # The control plane that saves may not hold the gateway's variables (as for ai_policy): it compiles.
    policy = llm_policy({"targets": [OPENAI, OLLAMA]}, {})
    assert [t.missing_key != "" for t in policy.targets] == [True, False]


def test_targets_keep_their_order_and_settings():
    policy = llm_policy({"targets": [
        {**OPENAI, "priority": 1, "weight": 2},
        {"provider": "anthropic", "model": "claude-3-5-haiku", "api_key": "sk-ant", "context_window": 200_000},
        {**OLLAMA, "name": "local"},
    ]}, ENV)
    assert [(t.name, t.provider, t.priority, t.weight, t.context_window) for t in policy.targets] == [
        ("openai/gpt-4o-mini", "openai", 1, 2, None),
        ("anthropic/claude-3-5-haiku", "anthropic", 0, 1, 200_000),
        ("local", "ollama", 0, 1, None),
    ]


@pytest.mark.parametrize("block", [None, [], "openai"])
def test_a_block_that_is_not_an_object_is_refused(block):
    assert list(errors_of(block)) == [""]


@pytest.mark.parametrize("targets", [None, [], {"provider": "openai"}, [OLLAMA] * 33])
def test_targets_are_a_list_of_1_to_32(targets):
    block = {} if targets is None else {"targets": targets}
    assert errors_of(block) == {"targets": [
        'Required: a list of 1 to 32 targets, each {"provider": "openai", "model": "gpt-4o-mini", ...}.']}


def test_32_targets_are_taken():
    targets = [{**OLLAMA, "name": f"t{i}"} for i in range(32)]
    assert len(llm_policy({"targets": targets}, {}).targets) == 32


def test_every_targets_mistakes_are_reported_at_once_by_path():
    errors = errors_of({"targets": [{"provider": "openai", "modle": "x"}, OLLAMA, {"provider": "cohere", "model": "m"},
                                    {**OLLAMA, "weight": 0}]})
    assert sorted(errors) == ["targets[0].model", "targets[0].modle", "targets[2].provider", "targets[3].weight"]


def test_two_targets_with_the_same_default_name_must_be_named():
    errors = errors_of({"targets": [OLLAMA, {**OLLAMA, "priority": 1}]})
    assert errors == {"targets[1]": ["'ollama/llama3' is also the name of targets[0]; names are unique within a "
                                     "route: give each a name."]}
    assert [t.name for t in llm_policy({"targets": [OLLAMA, {**OLLAMA, "name": "backup"}]}, {}).targets] == [
        "ollama/llama3", "backup"]


def test_a_given_name_taken_twice_is_refused_at_the_name():
    errors = errors_of({"targets": [{**OLLAMA, "name": "a"}, {**OPENAI, "name": "a"}]})
    assert errors == {"targets[1].name": ["'a' is also the name of targets[0]; names are unique within a route."]}


def test_an_unknown_key_is_refused_with_the_shared_wording():
    errors = errors_of({"targets": [OLLAMA], "gaurd": {}})
    assert errors == {"gaurd": [unknown_key_message("llm", "gaurd", KEYS)]}
    assert errors["gaurd"][0].endswith("Did you mean 'guard'?")


def test_notes_are_refused_like_unknown_keys():
    assert list(errors_of({"targets": [OLLAMA], "_comment": "x"})) == ["_comment"]


def test_the_guard_is_compiled_and_checks_prompts():
    policy = llm_policy({"targets": [OLLAMA], "guard": {"deny": [{"name": "secrets", "pattern": "(?i)password"}],
                                                        "detect": ["card"]}}, {})
    assert policy.guard is not None
    verdict = policy.guard.check([("user", "my Password is hunter2")])
    assert verdict.rule == "secrets"


def test_guard_mistakes_are_reported_under_guard():
    errors = errors_of({"targets": [OLLAMA], "guard": {"deny": ["(?=x)"], "roles": "user", "colour": 1}})
    assert sorted(errors) == ["guard.colour", "guard.deny[0]", "guard.roles"]
    assert list(errors_of({"targets": [OLLAMA], "guard": "strict"})) == ["guard"]


def test_token_limits_and_budgets_become_the_routes_budget_policy():
    policy = llm_policy({"targets": [OLLAMA],
                         "token_limits": {"tokens_per_minute": 10_000, "per": ["consumer", "model"]},
                         "budgets": [{"amount": 25, "currency": "EUR", "period": "month"}],
                         "on_store_error": "closed"}, {}, route_name="chat")
    assert policy.budgets is not None
    assert (policy.budgets.name, policy.budgets.on_store_error, policy.budgets.currency) == (
        "route:chat", "closed", "EUR")
    assert [m.describe() for m in policy.budgets.meters] == [
        "10000 tokens per minute per consumer and model", "25 EUR per month per consumer"]
    keys = [c.key for c in policy.budgets.plan(Subject("alice", "chat", "llama3"), 10, 1, 0.0)]
    assert keys == ["route:chat|tokens:minute|consumer=alice|model=llama3", "route:chat|money:EUR:month|consumer=alice"]


def test_budget_mistakes_are_reported_at_their_paths():
    errors = errors_of({"targets": [OLLAMA], "token_limits": [{"tokens_per_minute": 0}],
                        "budgets": {"amount": 5, "currency": "usd", "perod": "day"}})
    assert sorted(errors) == ["budgets.currency", "budgets.perod", "token_limits[0].tokens_per_minute"]


def test_on_store_error_alone_is_refused():
    assert errors_of({"targets": [OLLAMA], "on_store_error": "closed"}) == {
        "on_store_error": ["Applies to token_limits and budgets; this block has neither."]}
    assert list(errors_of({"targets": [OLLAMA], "token_limits": {"tokens_per_day": 5},
                           "on_store_error": "shut"})) == ["on_store_error"]


def test_an_empty_cache_block_turns_the_cache_on_with_its_defaults():
    assert llm_policy({"targets": [OLLAMA], "cache": {}}, {}).cache == CacheSettings(300.0, 1000, 1_048_576)


def test_cache_settings_are_kept_and_enabled_false_turns_it_off():
    policy = llm_policy({"targets": [OLLAMA], "cache": {"ttl_s": 60, "max_entries": 50, "max_body_bytes": 4096}},
                        {})
    assert policy.cache == CacheSettings(60.0, 50, 4096)
    assert llm_policy({"targets": [OLLAMA], "cache": {"enabled": False, "ttl_s": 60}}, {}).cache is None
    assert llm_policy({"targets": [OLLAMA], "cache": None}, {}).cache is None


def test_cache_mistakes_are_refused_at_their_paths():
    errors = errors_of({"targets": [OLLAMA], "cache": {"enabled": "yes", "ttl_s": 0, "max_entries": 10**7,
                                                       "max_body_bytes": -1, "ttl": 5}})
    assert errors == {
        "cache.ttl": [unknown_key_message("llm.cache", "ttl", CACHE_KEYS)],
        "cache.enabled": ["Must be true or false."],
        "cache.ttl_s": ["Must be a number of seconds from 1 to 604800."],
        "cache.max_entries": ["Must be a whole number from 1 to 1000000."],
        "cache.max_body_bytes": ["Must be a whole number of bytes from 1 to 104857600."],
    }
    assert list(errors_of({"targets": [OLLAMA], "cache": True})) == ["cache"]


@pytest.mark.parametrize(("value", "expected"), [(None, 1_048_576), (1, 1), (100 << 20, 100 << 20)])
def test_max_body_bytes_takes_1_byte_to_100_mib(value, expected):
    block = {"targets": [OLLAMA]} if value is None else {"targets": [OLLAMA], "max_body_bytes": value}
    assert llm_policy(block, {}).max_body_bytes == expected


@pytest.mark.parametrize("value", [0, (100 << 20) + 1, "1MB", 1.5, True])
def test_max_body_bytes_out_of_range_is_refused(value):
    assert errors_of({"targets": [OLLAMA], "max_body_bytes": value}) == {
        "max_body_bytes": ["Must be a whole number of bytes from 1 to 104857600."]}


def test_no_key_is_in_the_policys_repr():
    policy = llm_policy({"targets": [{**OPENAI, "api_key": "sk-block-secret"}, {**OPENAI, "name": "env"}]},
                        {"OPENAI_API_KEY": "sk-env-secret"})
    assert "sk-block-secret" not in repr(policy) and "sk-env-secret" not in repr(policy)
