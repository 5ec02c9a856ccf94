"""Security response headers: the defaults, https-only HSTS, the backend's own values, configuration."""
from __future__ import annotations

import pytest

from protocols.block_errors import BlockError
from protocols.guards import SecurityHeaders


def apply(block=None, headers=None, https=False) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in SecurityHeaders.from_config(block).apply(list(headers or []), https):
        out.setdefault(name.decode().lower(), []).append(value.decode())
    return out


def test_the_defaults_are_nosniff_deny_and_no_referrer():
    answer = apply()
    assert answer["x-content-type-options"] == ["nosniff"]
    assert answer["x-frame-options"] == ["DENY"]
    assert answer["referrer-policy"] == ["no-referrer"]
    assert "content-security-policy" not in answer


def test_hsts_is_sent_only_on_https_answers():
    assert "strict-transport-security" not in apply()
    assert apply(https=True)["strict-transport-security"] == ["max-age=31536000"]


def test_hsts_options_are_added_to_the_value():
    answer = apply({"hsts_max_age": 63072000, "hsts_include_subdomains": True, "hsts_preload": True}, https=True)
    assert answer["strict-transport-security"] == ["max-age=63072000; includeSubDomains; preload"]


def test_the_backends_own_value_wins_by_default():
    answer = apply(headers=[(b"X-Frame-Options", b"SAMEORIGIN")])
    assert answer["x-frame-options"] == ["SAMEORIGIN"]


def test_override_replaces_the_backends_value():
    answer = apply({"override": True}, headers=[(b"X-Frame-Options", b"SAMEORIGIN")])
    assert answer["x-frame-options"] == ["DENY"]


def test_false_switches_one_header_off():
    answer = apply({"frame_options": False, "referrer_policy": False})
    assert "x-frame-options" not in answer
    assert "referrer-policy" not in answer
    assert answer["x-content-type-options"] == ["nosniff"]


def test_a_content_security_policy_can_be_set():
    answer = apply({"content_security_policy": "default-src 'none'; frame-ancestors 'none'"})
    assert answer["content-security-policy"] == ["default-src 'none'; frame-ancestors 'none'"]


def test_disabled_adds_nothing():
    assert apply({"enabled": False}, https=True) == {}


@pytest.mark.parametrize(("block", "path"), [
    ({"frame_options": "ALLOW-FROM x"}, "frame_options"),
    ({"referrer_policy": "everything"}, "referrer_policy"),
    ({"content_security_policy": "a\r\nSet-Cookie: x=1"}, "content_security_policy"),
    ({"hsts_preload": True}, "hsts_preload"),
    ({"hsts_max_age": -1}, "hsts_max_age"),
])
def test_bad_values_are_refused_by_path(block, path):
    with pytest.raises(BlockError) as caught:
        SecurityHeaders.from_config(block)
    assert path in caught.value.errors
