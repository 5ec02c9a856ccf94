"""A `plugins` list is checked by path: its entries' keys, names that are not installed, and each plugin's own
check_config; and a route's list replaces the gateway's entries of the same name, in order."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.block_errors import BlockError
from protocols.plugins import PluginEntry, plugin_entries, route_chain
from tests.support.plugin_packages import installed


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[None]:
    with installed(tmp_path):
        yield


def refused(value: object) -> dict[str, list[str]]:
    with pytest.raises(BlockError) as caught:
        plugin_entries(value)
    return caught.value.errors


def test_an_unknown_plugin_is_refused_at_its_name_with_the_installed_names(plugins: None) -> None:
    errors = refused([{"name": "exampel"}])
    assert list(errors) == ["[0].name"]
    message = errors["[0].name"][0]
    assert message.startswith("Unknown plugin 'exampel'; installed: ") and ", example, " in message


def test_rustas_own_ai_routing_cannot_be_listed_and_says_where_it_comes_from(plugins: None) -> None:
    errors = refused([{"name": "ai_routing"}])
    assert errors == {"[0].name": ["AI routing runs from the route's ai_policy block; it is not listed in plugins."]}


def test_the_plugins_own_check_refuses_its_config_by_path(plugins: None) -> None:
    errors = refused([{"name": "example", "config": {"deny": ["admin"], "colour": 1}}])
    assert errors == {"[0].config.deny[0]": ["Must be a path starting with /."],
                      "[0].config.colour": ["Unknown key; the example plugin knows header_value, deny."]}


def test_entry_keys_are_checked_by_path(plugins: None) -> None:
    errors = refused([{"name": "example", "order": "1", "timeout_ms": 0, "on_error": "ignore", "cofnig": {}},
                      {"name": "example"}, "raising"])
    assert set(errors) == {"[0].order", "[0].timeout_ms", "[0].on_error", "[0].cofnig", "[2]"}
    assert refused({"name": "example"}) == {
        "": ['Must be a list of plugins, like [{"name": "example", "config": {}}], or null.']}


def test_a_plugin_listed_twice_is_refused(plugins: None) -> None:
    assert refused([{"name": "example"}, {"name": "example"}]) == {
        "[1].name": ["Plugin 'example' is listed twice; give it once."]}


def test_defaults_fill_an_entry_given_by_name_only(plugins: None) -> None:
    assert plugin_entries([{"name": "example"}]) == (PluginEntry("example", {}, 0, 50, "fail"),)


def test_a_routes_entry_replaces_the_gateways_of_the_same_name_and_order_decides() -> None:
    gateway = (PluginEntry("a", {"v": 1}, order=5), PluginEntry("b", order=1))
    route = (PluginEntry("a", {"v": 2}, order=0), PluginEntry("c", order=3))
    assert [(entry.name, entry.order) for entry in route_chain(gateway, route)] == [("a", 0), ("b", 1), ("c", 3)]
    assert route_chain(gateway, route)[0].config == {"v": 2}
