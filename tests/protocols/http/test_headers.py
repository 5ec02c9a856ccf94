"""The proxy's request-head rules on their own: paths, hosts, request ids, trusted peers, hop-by-hop fields."""
from __future__ import annotations

import pytest

from protocols.http.headers import (
    RequestIds,
    TrustedPeers,
    client_address,
    host_key,
    normalize_path,
    parse_networks,
    scan_request_headers,
)


@pytest.mark.parametrize(("raw", "clean"), [
    ("/a/b/c", "/a/b/c"),
    ("/a/./b", "/a/b"),
    ("/a/b/../c", "/a/c"),
    ("/a/%2e%2E/b", "/b"),
    ("/a/%2E/b", "/a/b"),
    ("/../../etc", "/etc"),
    ("/a/b/..", "/a/"),
    ("/a/.hidden/x", "/a/.hidden/x"),
    ("/v1.2/x", "/v1.2/x"),
])
def test_it_removes_dot_segments(raw, clean):
    assert normalize_path(raw) == clean


@pytest.mark.parametrize(("field", "key"), [
    (b"Example.COM", "example.com"),
    (b"example.com:8080", "example.com"),
    (b"[::1]:8080", "[::1]"),
    (b"", ""),
])
def test_it_matches_hosts_lower_case_without_port(field, key):
    assert host_key(field) == key


def test_it_keeps_a_visible_ascii_request_id():
    assert RequestIds().take(b"abc-123_~!") == b"abc-123_~!"


@pytest.mark.parametrize("offered", [b"", b"with space", b"x" * 201, b"tab\there", "caf\u00e9".encode()])
def test_it_replaces_an_unusable_request_id(offered):
    assert RequestIds().take(offered) != offered


def test_it_generates_distinct_request_ids():
    ids = RequestIds()
    assert len({ids.take(b"") for _ in range(1000)}) == 1000


def test_it_trusts_peers_inside_the_configured_networks():
    peers = TrustedPeers(parse_networks(["10.0.0.0/8", "2001:db8::1"]))
    assert "10.1.2.3" in peers
    assert "2001:db8::1" in peers
    assert "11.0.0.1" not in peers
    assert "not-an-address" not in peers


def test_it_rejects_a_malformed_trusted_network():
    with pytest.raises(ValueError):
        parse_networks(["10.0.0.0/33"])


def test_it_drops_fields_named_in_connection_wherever_they_appear():
    head = scan_request_headers([
        (b"x-early", b"1"), (b"connection", b"X-Early"), (b"connection", b"x-late"), (b"x-late", b"2"),
        (b"x-kept", b"3"),
    ])
    assert head.forward == [(b"x-kept", b"3")]


def test_it_joins_repeated_forwarded_for_fields():
    head = scan_request_headers([(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2")])
    assert head.forwarded_for == b"1.1.1.1, 2.2.2.2"


def test_it_notices_a_request_body():
    assert scan_request_headers([(b"content-length", b"5")]).has_body
    assert scan_request_headers([(b"transfer-encoding", b"chunked")]).has_body
    assert not scan_request_headers([(b"content-length", b"0")]).has_body


def test_the_client_behind_trusted_proxies_is_the_rightmost_untrusted_forwarded_address():
    trusted = TrustedPeers(parse_networks(["10.0.0.0/8"]))
    assert client_address("10.0.0.1", b"6.6.6.6, 203.0.113.9, 10.0.0.7", trusted) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_only_yields_its_first_address():
    trusted = TrustedPeers(parse_networks(["10.0.0.0/8"]))
    assert client_address("10.0.0.1", b"10.0.0.3, 10.0.0.2", trusted) == "10.0.0.3"

