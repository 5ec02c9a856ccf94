"""IP allow and deny lists: CIDR ranges, deny over allow, IPv4-mapped addresses, fail-closed parsing."""
from __future__ import annotations

import pytest

from protocols.block_errors import BlockError
from protocols.guards import ClientForbidden, IpRules


def rules(**block) -> IpRules:
    compiled = IpRules.from_config(block)
    assert compiled is not None
    return compiled


def test_an_allow_list_admits_its_ranges_and_refuses_the_rest():
    allow = rules(allow=["10.0.0.0/8", "2001:db8::/32"])
    assert allow.permits("10.20.30.40")
    assert allow.permits("2001:db8::1")
    assert not allow.permits("192.168.1.1")
    assert not allow.permits("2001:db9::1")


def test_deny_wins_over_allow():
    mixed = rules(allow=["10.0.0.0/8"], deny=["10.0.0.13"])
    assert mixed.permits("10.0.0.12")
    assert not mixed.permits("10.0.0.13")


def test_a_deny_list_alone_admits_everyone_else():
    deny = rules(deny=["203.0.113.0/24"])
    assert deny.permits("198.51.100.7")
    assert not deny.permits("203.0.113.99")


def test_an_ipv4_mapped_ipv6_client_is_judged_as_its_ipv4_address():
    assert not rules(deny=["10.0.0.0/8"]).permits("::ffff:10.1.2.3")
    assert rules(allow=["10.0.0.0/8"]).permits("::ffff:10.1.2.3")


def test_a_mapped_range_in_the_list_covers_the_plain_ipv4_addresses():
    assert not rules(deny=["::ffff:10.0.0.0/104"]).permits("10.9.9.9")


def test_an_address_that_cannot_be_parsed_is_refused_by_an_allow_list():
    assert not rules(allow=["10.0.0.0/8"]).permits("")
    assert not rules(allow=["10.0.0.0/8"]).permits("unix-socket")
    assert rules(deny=["10.0.0.0/8"]).permits("")


def test_check_raises_403_without_naming_the_rule():
    with pytest.raises(ClientForbidden) as caught:
        rules(allow=["10.0.0.0/8"]).check("192.0.2.1")
    assert caught.value.status == 403
    assert "10.0.0.0" not in caught.value.message


def test_host_bits_in_a_range_are_ignored():
    assert rules(allow=["10.0.0.1/8"]).permits("10.255.0.1")


def test_a_bad_entry_is_refused_by_its_position():
    with pytest.raises(BlockError) as caught:
        IpRules.from_config({"allow": ["10.0.0.0/8", "10.0.0.0/33", "example.com"]})
    assert set(caught.value.errors) == {"allow[1]", "allow[2]"}


def test_a_misspelt_list_is_refused_rather_than_leaving_the_route_open():
    with pytest.raises(BlockError) as caught:
        IpRules.from_config({"alow": ["10.0.0.0/8"]})
    assert caught.value.errors[""][0].startswith("Unknown key 'alow'")


def test_empty_or_disabled_rules_compile_to_nothing():
    assert IpRules.from_config({"allow": [], "deny": []}) is None
    assert IpRules.from_config({"enabled": False, "deny": ["10.0.0.0/8"]}) is None
