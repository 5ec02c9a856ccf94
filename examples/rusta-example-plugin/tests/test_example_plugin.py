"""The example plugin on its own: its config check, its answers, the header it sends upstream."""
from __future__ import annotations

import asyncio

from rusta_example_plugin import check_config, factory

from protocols.plugins import Answer, Modify, RequestView


def view(path: str) -> RequestView:
    return RequestView("GET", path, "", (("host", "gw"),), "127.0.0.1", "example-route")


def test_it_sends_its_configured_header_upstream() -> None:
    plugin = factory({"header_value": "blue"})
    assert asyncio.run(plugin.upstream(view("/a"))) == Modify(set=(("X-Example", "blue"),))


def test_it_answers_403_under_a_denied_prefix_only() -> None:
    plugin = factory({"deny": ["/admin"]})
    refused = asyncio.run(plugin.request(view("/admin/users")))
    assert isinstance(refused, Answer) and refused.status == 403
    assert asyncio.run(plugin.request(view("/administrator"))) is None
    assert asyncio.run(plugin.request(view("/public"))) is None


def test_its_check_refuses_bad_keys_by_path() -> None:
    assert check_config({"header_value": "a\nb", "deny": ["admin", "/ok"], "colour": 1}) == {
        "colour": "Unknown key; the example plugin knows header_value, deny.",
        "header_value": "Must be a non-empty header value on one line.",
        "deny[0]": "Must be a path starting with /.",
    }
    assert check_config({"header_value": "x", "deny": ["/admin"]}) == {}
