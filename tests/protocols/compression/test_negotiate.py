"""Accept-Encoding negotiation: q-values, q=0 refusals, `*`, `identity`, and the server's order for ties."""
from __future__ import annotations

from protocols.compression import choose, parse_accept_encoding

OFFERED = ("br", "zstd", "gzip")


def test_the_highest_q_value_wins():
    assert choose(b"gzip;q=0.9, br;q=0.5", OFFERED) == "gzip"


def test_ties_go_to_the_servers_preference():
    assert choose(b"gzip, br, zstd", OFFERED) == "br"
    assert choose(b"gzip, br", ("gzip", "br")) == "gzip"


def test_q_zero_refuses_a_coding():
    assert choose(b"br;q=0, gzip", OFFERED) == "gzip"
    assert choose(b"gzip;q=0", OFFERED) is None


def test_star_stands_for_codings_not_listed():
    assert choose(b"*", OFFERED) == "br"
    assert choose(b"br;q=0, *;q=0.3", OFFERED) == "zstd"
    assert choose(b"*;q=0", OFFERED) is None


def test_identity_alone_or_no_field_means_no_compression():
    assert choose(b"identity", OFFERED) is None
    assert choose(None, OFFERED) is None
    assert choose(b"", OFFERED) is None


def test_codings_the_server_does_not_offer_are_ignored():
    assert choose(b"deflate, compress", OFFERED) is None


def test_unreadable_q_values_drop_the_entry_and_x_gzip_is_gzip():
    assert parse_accept_encoding(b"gzip;q=abc, br;q=2, x-gzip;q=0.4") == {"gzip": 0.4}
    assert parse_accept_encoding(b"GZIP;Q=0.500") == {"gzip": 0.5}
