"""JWKS-backed policies against a real key-set server on loopback: first fetch, kid matching, rotation,
the refresh rate limit, outages (last good keys kept) and keys that must not be used."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from protocols.auth import AuthFailure, JwtPolicy, KeysUnavailable
from tests.protocols.auth.jwks_server import JwksServer
from tests.protocols.auth.tokens import AUDIENCE, ISSUER, MAKERS, SECRET, b64, bearer, claims, ec_key, forged, rsa_key

makers = pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))


class Clock:
    """The policy's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[JwksServer]:
    with JwksServer() as running:
        running.publish(rsa_key(0).jwk("k1", "RS256"))
        yield running


def jwks_policy(server: JwksServer, clock: Clock, **block: Any) -> JwtPolicy:
    return JwtPolicy.from_config({"jwks_url": server.url, "issuer": ISSUER, "audience": AUDIENCE, **block},
                                 monotonic=clock)


async def outcome(policy: JwtPolicy, token: bytes) -> str:
    """"ok", or the failure's error code / type, so one scenario can check many requests."""
    try:
        await policy.authenticate(bearer(token))
    except AuthFailure as failure:
        return failure.error or "missing"
    except KeysUnavailable:
        return "unavailable"
    return "ok"


@makers
def test_it_fetches_the_key_set_once_and_then_serves_from_it(server, make):
    policy = jwks_policy(server, Clock())

    async def scenario() -> list[str]:
        return [await outcome(policy, make(claims(n=i), rsa_key(0), "RS256", kid="k1")) for i in range(5)]

    assert asyncio.run(scenario()) == ["ok"] * 5
    assert server.hits == 1


@makers
def test_a_token_signed_by_one_key_but_naming_another_is_refused(server, make):
    server.publish(rsa_key(0).jwk("k1", "RS256"), rsa_key(1).jwk("k2", "RS256"))
    policy = jwks_policy(server, Clock())
    assert asyncio.run(outcome(policy, make(claims(), rsa_key(0), "RS256", kid="k2"))) == "invalid_token"
    assert asyncio.run(outcome(policy, make(claims(), rsa_key(1), "RS256", kid="k2"))) == "ok"


@makers
def test_a_rotated_key_is_picked_up_when_its_kid_first_arrives(server, make):
    clock = Clock()
    policy = jwks_policy(server, clock)

    async def scenario() -> list[str]:
        results = [await outcome(policy, make(claims(), rsa_key(0), "RS256", kid="k1"))]
        server.publish(rsa_key(1).jwk("k2", "RS256"))  # the issuer rotates: k1 withdrawn, k2 published
        clock.now += 10
        results.append(await outcome(policy, make(claims(), rsa_key(1), "RS256", kid="k2")))
        return results

    assert asyncio.run(scenario()) == ["ok", "ok"]
    assert server.hits == 2


def test_a_withdrawn_keys_cached_tokens_stop_working_after_the_refresh(server):
    clock = Clock()
    policy = jwks_policy(server, clock)
    old = MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1")

    async def scenario() -> list[str]:
        results = [await outcome(policy, old), await outcome(policy, old)]
        server.publish(rsa_key(1).jwk("k2", "RS256"))
        clock.now += 10
        results.append(await outcome(policy, MAKERS["pyjwt"](claims(), rsa_key(1), "RS256", kid="k2")))
        results.append(await outcome(policy, old))
        return results

    assert asyncio.run(scenario()) == ["ok", "ok", "ok", "invalid_token"]


def test_a_changed_key_set_makes_every_cached_token_unknown(server):
    clock = Clock()
    policy = jwks_policy(server, clock)
    value = bearer(MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1"))

    async def scenario() -> tuple[bool, bool]:
        await policy.authenticate(value)
        await policy.authenticate(value)  # the first fetch changed the key set: the token is checked again
        known_before = policy.known(value) is not None
        server.publish(rsa_key(1).jwk("k2", "RS256"))
        clock.now += 10
        await outcome(policy, MAKERS["pyjwt"](claims(), rsa_key(1), "RS256", kid="k2"))  # the refresh
        return known_before, policy.known(value) is not None

    assert asyncio.run(scenario()) == (True, False)


def test_unknown_kids_refresh_at_most_once_per_min_refresh_period(server):
    clock = Clock()
    policy = jwks_policy(server, clock, jwks_min_refresh_s=10)

    async def scenario() -> list[int]:
        hits = []
        await outcome(policy, MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1"))
        for step in range(3):
            for n in range(20):
                token = MAKERS["pyjwt"](claims(), rsa_key(1), "RS256", kid=f"random-{step}-{n}")
                assert await outcome(policy, token) == "invalid_token"
            hits.append(server.hits)
            clock.now += 10
        return hits

    # The first fetch at t=0 counts as the period's fetch; then one per period, however many unknown kids.
    assert asyncio.run(scenario()) == [1, 2, 3]


def test_concurrent_requests_with_a_new_kid_share_one_fetch(server):
    clock = Clock()
    policy = jwks_policy(server, clock)

    async def scenario() -> list[str]:
        await outcome(policy, MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1"))
        server.publish(rsa_key(0).jwk("k1", "RS256"), rsa_key(1).jwk("k2", "RS256"))
        clock.now += 10
        token = MAKERS["joserfc"](claims(), rsa_key(1), "RS256", kid="k2")
        return list(await asyncio.gather(*(outcome(policy, token) for _ in range(20))))

    assert asyncio.run(scenario()) == ["ok"] * 20
    assert server.hits == 2


def test_the_last_good_keys_are_used_while_the_server_is_down(server):
    clock = Clock()
    policy = jwks_policy(server, clock, jwks_cache_s=300)
    token = MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1")

    async def scenario() -> list[str]:
        results = [await outcome(policy, token)]
        server.stop()
        clock.now += 301  # stale: the next request starts a refresh in the background, which fails
        for n in range(3):
            results.append(await outcome(policy, MAKERS["pyjwt"](claims(n=n), rsa_key(0), "RS256", kid="k1")))
            await policy.jwks.idle()
        clock.now += 600
        results.append(await outcome(policy, MAKERS["pyjwt"](claims(n=9), rsa_key(0), "RS256", kid="k1")))
        await policy.jwks.idle()
        return results

    assert asyncio.run(scenario()) == ["ok"] * 5
    assert policy.jwks.fetches == 3  # the first, one when stale, one a period later: not one per request


def test_a_failing_server_is_asked_at_most_once_per_period(server):
    clock = Clock()
    policy = jwks_policy(server, clock, jwks_cache_s=30)
    token = MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1")

    async def scenario() -> list[str]:
        results = [await outcome(policy, token)]
        server.status = 503
        clock.now += 31
        for n in range(10):
            results.append(await outcome(policy, MAKERS["pyjwt"](claims(n=n), rsa_key(0), "RS256", kid="k1")))
            results.append(await outcome(policy, MAKERS["pyjwt"](claims(n=n), rsa_key(1), "RS256", kid="new")))
            await policy.jwks.idle()
        return results

    results = asyncio.run(scenario())
    assert results[0] == "ok" and results[1::2] == ["ok"] * 10 and results[2::2] == ["invalid_token"] * 10
    assert server.hits == 2


def test_without_any_key_set_yet_it_answers_503_then_recovers(server):
    clock = Clock()
    policy = jwks_policy(server, clock)
    server.stop()
    token = MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1")

    async def scenario() -> list[str]:
        results = [await outcome(policy, token), await outcome(policy, token)]
        server.start()
        clock.now += 10
        results.append(await outcome(policy, token))
        return results

    with pytest.raises(KeysUnavailable) as caught:
        asyncio.run(policy.authenticate(bearer(token)))
    assert caught.value.status == 503
    assert (b"retry-after", b"10") in caught.value.headers
    policy = jwks_policy(server, clock)
    assert asyncio.run(scenario()) == ["unavailable", "unavailable", "ok"]


def test_a_symmetric_key_in_the_key_set_is_never_used(server):
    server.publish(rsa_key(0).jwk("k1", "RS256"), {"kty": "oct", "kid": "s", "k": b64(SECRET.encode()).decode()})
    policy = jwks_policy(server, Clock())
    assert asyncio.run(outcome(policy, MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1"))) == "ok"
    assert {key.kid for key in policy.jwks.keys} == {"k1"}
    token = MAKERS["pyjwt"](claims(), SECRET, "HS256", kid="s")
    assert asyncio.run(outcome(policy, token)) == "invalid_token"


def test_an_hs256_token_signed_with_a_published_rsa_key_is_refused(server):
    pem = rsa_key(0).public_pem.encode()
    policy = jwks_policy(server, Clock())
    token = forged({"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims(), hmac_key=pem)
    assert asyncio.run(outcome(policy, token)) == "invalid_token"


def test_a_key_is_only_used_with_its_declared_algorithm(server):
    policy = jwks_policy(server, Clock(), algorithms=["RS256", "PS256"])
    token = MAKERS["pyjwt"](claims(), rsa_key(0), "PS256", kid="k1")  # k1 is published as RS256
    assert asyncio.run(outcome(policy, token)) == "invalid_token"


@makers
def test_a_key_without_alg_serves_each_configured_algorithm_of_its_type(server, make):
    server.publish(rsa_key(0).jwk("k1"), ec_key().jwk("e1"))
    policy = jwks_policy(server, Clock(), algorithms=["RS256", "PS256", "ES256"])

    async def scenario() -> list[str]:
        return [await outcome(policy, make(claims(), rsa_key(0), "RS256", kid="k1")),
                await outcome(policy, make(claims(), rsa_key(0), "PS256", kid="k1")),
                await outcome(policy, make(claims(), ec_key(), "ES256", kid="e1")),
                await outcome(policy, make(claims(), ec_key(), "ES256", kid="k1"))]

    assert asyncio.run(scenario()) == ["ok", "ok", "ok", "invalid_token"]


def test_a_key_set_with_no_usable_key_does_not_replace_the_good_one(server):
    clock = Clock()
    policy = jwks_policy(server, clock)
    token = MAKERS["pyjwt"](claims(), rsa_key(0), "RS256", kid="k1")

    async def scenario() -> list[str]:
        results = [await outcome(policy, token)]
        server.document = {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}
        clock.now += 10
        assert not await policy.jwks.refresh()
        server.document = {"not": "a key set"}
        clock.now += 10
        assert not await policy.jwks.refresh()
        results.append(await outcome(policy, MAKERS["pyjwt"](claims(n=1), rsa_key(0), "RS256", kid="k1")))
        return results

    assert asyncio.run(scenario()) == ["ok", "ok"]
