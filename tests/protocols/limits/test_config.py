"""RateLimitPolicy.from_config (the earlier gateway's blocks, Rusta's names, mistakes) and limit_key scopes."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from protocols.block_errors import BlockError
from protocols.limits import Limiter, RateLimitPolicy, limit_key
from tests.support.compat import fixture, kairos_examples, load


def kairos_block(name: str) -> dict:
    return load(fixture(name))["rate_limit"]


def refused(block: dict) -> tuple[str, str]:
    """(path inside the block, message) of the one problem the compiler stops at."""
    with pytest.raises(BlockError) as caught:
        RateLimitPolicy.from_config(block)
    [(path, messages)] = caught.value.errors.items()
    return path, " ".join(messages)


def test_the_earlier_gateways_per_ip_block_compiles():
    policy = RateLimitPolicy.from_config(kairos_block("per_ip.json"))
    assert (policy.algorithm, policy.limit, policy.window_s, policy.scope, policy.store) == (
        "sliding_window", 40, 30.0, ("ip",), "local")
    assert policy.namespace.startswith("kairos_rl_fixture")
    assert policy.warnings  # its burst_allowance means nothing to a sliding window, and it says so


def test_the_earlier_gateways_per_ip_and_route_block_compiles():
    assert RateLimitPolicy.from_config(kairos_block("advanced.json")).scope == ("ip", "route")


def test_the_multi_protocol_shape_names_the_algorithm_in_strategy():
    policy = RateLimitPolicy.from_config(kairos_block("multi_protocol.json"))
    assert (policy.algorithm, policy.limit, policy.window_s, policy.scope) == ("sliding_window", 50, 60.0, ("ip",))


@pytest.mark.parametrize("path", kairos_examples())
def test_every_rate_limit_block_in_the_earlier_gateways_format_compiles(path):
    block = load(path).get("rate_limit")
    if block is not None:
        assert RateLimitPolicy.from_config(block).limit > 0


@pytest.mark.parametrize(("block", "capacity"), [
    ({"window_type": "TokenBucket", "requests_per_window": 100, "window_duration": 60, "burst_allowance": 20}, 120),
    ({"strategy": "token_bucket", "requests_per_minute": 100, "burst_size": 150}, 150),
    ({"algorithm": "token_bucket", "limit": 10, "window_s": 1, "burst": 25}, 25),
    ({"algorithm": "token_bucket", "limit": 10}, 10),
])
def test_a_token_bucket_takes_its_burst_from_any_of_the_names(block, capacity):
    policy = RateLimitPolicy.from_config(block)
    assert (policy.algorithm, policy.capacity) == ("token_bucket", capacity)
    assert not policy.warnings


def test_enable_redis_chooses_the_redis_store():
    assert RateLimitPolicy.from_config({"limit": 5, "enable_redis": True}).store == "redis"


@pytest.mark.parametrize(("strategy", "scope"), [
    ("PerIP", ("ip",)), ("PerUser", ("user",)), ("PerRoute", ("route",)), ("PerIPAndRoute", ("ip", "route")),
    ("PerUserAndRoute", ("user", "route")), ("PerAPIKey", ("api_key",)), ("Global", ()),
])
def test_the_earlier_strategy_names_are_key_scopes(strategy, scope):
    assert RateLimitPolicy.from_config({"limit": 5, "strategy": strategy}).scope == scope


@pytest.mark.parametrize(("block", "path", "words"), [
    ({"limit": 0}, "limit", "Must be an integer"),
    ({"limit": 5, "requests_per_minute": 5}, "", "not several"),
    ({}, "", "needs a limit"),
    ({"limit": 5, "window_s": 0}, "window_s", "Must be a number of seconds"),
    ({"limit": 5, "window_type": "LeakyBucket"}, "window_type", "Must be fixed_window"),
    ({"limit": 5, "strategy": "PerMoon"}, "strategy", "PerMoon"),
    ({"limit": 5, "scope": ["ip", "moon"]}, "scope", "moon"),
    ({"limit": 5, "scope": "header"}, "header", "names the header"),
    ({"limit": 5, "on_store_error": "maybe"}, "on_store_error", "Must be one of"),
    ({"limit": 10, "algorithm": "token_bucket", "burst": 5}, "burst", "below the limit"),
    ({"limit": 5, "windw_s": 5}, "", "windw_s"),
    ({"limit": 5, "enable_redis": "yes"}, "enable_redis", "Must be true or false"),
])
def test_it_refuses_a_wrong_block_naming_the_key(block, path, words):
    found, message = refused(block)
    assert found == path and words in message


def test_policies_that_differ_never_share_a_namespace():
    a = RateLimitPolicy.from_config({"limit": 5}, name="route:a")
    assert a.namespace != RateLimitPolicy.from_config({"limit": 5}, name="route:b").namespace
    assert a.namespace != RateLimitPolicy.from_config({"limit": 6}, name="route:a").namespace
    assert a.namespace == RateLimitPolicy.from_config({"limit": 5}, name="route:a").namespace


# --- limit_key ------------------------------------------------------------------------------------------------

def key(scope, user=None, headers=(), **block) -> str | None:
    policy = RateLimitPolicy.from_config({"limit": 5, "scope": scope, **block}, name="p")
    return limit_key(policy, "orders", "203.0.113.9", user, headers)


def test_per_ip_keys_by_client_address():
    assert key("ip").endswith("|ip=203.0.113.9")
    assert key("ip") == key("ip", user="alice")


def test_per_route_and_ip_combines_both():
    assert key(["ip", "route"]).endswith("|ip=203.0.113.9|route=orders")


def test_per_user_keys_by_subject():
    assert key("user", user="alice").endswith("|user=alice")
    assert key("user", user="alice") != key("user", user="bob")


def test_per_user_without_a_user_falls_back_to_the_client_address():
    assert key("user").endswith("|ip=203.0.113.9")


def test_per_user_without_a_user_can_be_left_unlimited():
    assert key("user", missing_identity="skip") is None


def admitted_per_user_and_route(hits: list[tuple[str, str]]) -> list[bool]:
    """Whether each (user, route) hit is admitted by one PerUserAndRoute limiter of 1 request, all from one
    client address."""
    policy = RateLimitPolicy.from_config({"limit": 1, "window_s": 60, "strategy": "PerUserAndRoute"}, name="global")
    limiter = Limiter(policy)

    async def scenario() -> list[bool]:
        return [(await limiter.hit(limit_key(policy, route, "198.51.100.7", user), now=100.0)).allowed
                for user, route in hits]

    return asyncio.run(scenario())


def test_per_user_and_route_counts_two_users_on_one_route_apart():
    assert admitted_per_user_and_route([("alice", "orders"), ("alice", "orders"), ("bob", "orders")]) == [
        True, False, True]


def test_per_user_and_route_counts_one_user_on_two_routes_apart():
    assert admitted_per_user_and_route([("alice", "orders"), ("alice", "orders"), ("alice", "invoices")]) == [
        True, False, True]


def test_per_user_and_route_without_a_user_falls_back_to_the_client_address_on_that_route():
    assert key(["user", "route"]).endswith("|ip=203.0.113.9|route=orders")
    assert key(["user", "route"], missing_identity="skip") is None


def test_per_api_key_never_puts_the_key_itself_in_the_counter_name():
    named = key("api_key", headers=[(b"x-api-key", b"sk_live_secret")])
    assert "sk_live_secret" not in named
    assert named != key("api_key", headers=[(b"x-api-key", b"sk_live_other")])
    assert key("api_key").endswith("|ip=203.0.113.9")


def test_per_header_keys_by_the_named_header():
    assert key("header", header="X-Tenant", headers=[(b"x-tenant", b"acme")]).endswith("|h=acme")


def test_a_long_header_value_is_hashed():
    named = key("header", header="X-Tenant", headers=[(b"x-tenant", b"a" * 5000)])
    assert len(named) < 100


def test_a_global_policy_has_one_counter():
    assert key([]) == key("global") == key([], user="x")


def test_a_disabled_policy_limits_nothing():
    assert key("ip", enabled=False) is None


def test_it_loads_without_django():
    code = "import sys, protocols.limits; print(any(m.startswith('django') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
