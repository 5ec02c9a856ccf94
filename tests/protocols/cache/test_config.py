"""CachePolicy: what may be stored and for how long, by RFC 9111 for a shared cache, and the block's checks."""
from __future__ import annotations

import email.utils

import pytest

from protocols.block_errors import BlockError
from protocols.cache import CachePolicy

NOW = 1_790_000_000.0
POLICY = CachePolicy(ttl_s=60, stale_if_error_s=30)


def fresh(headers, status=200, authorized=False, policy=POLICY):
    return policy.freshness(status, headers, NOW, authorized)


def test_no_freshness_information_takes_the_routes_ttl():
    assert fresh([]).fresh_s == 60


def test_max_age_sets_the_freshness():
    assert fresh([(b"cache-control", b"public, max-age=10")]).fresh_s == 10


def test_s_maxage_wins_over_max_age():
    assert fresh([(b"cache-control", b"max-age=10, s-maxage=99")]).fresh_s == 99


def test_expires_counts_from_now_and_an_invalid_date_is_already_expired():
    later = email.utils.formatdate(NOW + 120, usegmt=True).encode()
    assert fresh([(b"expires", later)]).fresh_s == pytest.approx(120, abs=1)
    assert fresh([(b"expires", b"0")]) is None


def test_the_upstreams_age_is_subtracted():
    assert fresh([(b"cache-control", b"max-age=10"), (b"age", b"8")]).fresh_s == 2
    assert fresh([(b"cache-control", b"max-age=10"), (b"age", b"10")]) is None


@pytest.mark.parametrize("directive", [b"no-store", b"private", b"no-cache", b'no-cache="set-cookie"',
                                       b"max-age=0", b"max-age=abc"])
def test_directives_that_forbid_storing(directive):
    assert fresh([(b"cache-control", directive)]) is None


def test_set_cookie_is_not_stored_unless_the_route_says_so():
    assert fresh([(b"set-cookie", b"a=1")]) is None
    assert fresh([(b"set-cookie", b"a=1")], policy=CachePolicy(store_set_cookie=True)) is not None


def test_vary_star_is_not_stored():
    assert fresh([(b"vary", b"*")]) is None


def test_only_configured_statuses_are_stored():
    assert fresh([], status=404) is not None
    assert fresh([], status=500) is None
    assert fresh([], status=302) is None


def test_an_answer_to_an_authorized_request_needs_public_or_s_maxage():
    assert fresh([], authorized=True) is None
    assert fresh([(b"cache-control", b"public")], authorized=True) is not None
    assert fresh([(b"cache-control", b"s-maxage=5")], authorized=True) is not None


def test_the_stale_window_comes_from_the_answer_then_the_route_and_revalidation_forbids_it():
    assert fresh([]).stale_s == 30
    assert fresh([(b"cache-control", b"max-age=5, stale-if-error=600")]).stale_s == 600
    assert fresh([(b"cache-control", b"max-age=5, must-revalidate")]).stale_s == 0


def test_the_block_is_checked_key_by_key():
    with pytest.raises(BlockError) as caught:
        CachePolicy.from_config({"ttl_s": -1, "vary_headers": "Accept", "methods": ["POST"], "statuses": [206],
                                 "store_set_cookie": "yes", "max_body_bytes": 1.5})
    assert set(caught.value.errors) == {"ttl_s", "vary_headers", "methods", "statuses", "store_set_cookie",
                                        "max_body_bytes"}


def test_a_disabled_or_absent_block_means_no_cache():
    assert CachePolicy.from_config(None) is None
    assert CachePolicy.from_config({"enabled": False}) is None
    assert CachePolicy.from_config({}) == CachePolicy()
