"""`GET /api/plugins/`: what a `plugins` entry may name, from the packages installed, and where each runs."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from routes import services
from tests.support.plugin_packages import installed

pytestmark = pytest.mark.django_db

URL = "/api/plugins/"


@pytest.fixture
def plugins(tmp_path: Path) -> Iterator[None]:
    with installed(tmp_path):
        yield


def by_name(api) -> dict[str, dict]:
    response = api.get(URL)
    assert response.status_code == 200
    return {row["name"]: row for row in response.json()}


def test_it_lists_the_installed_packages_and_rustas_own_ai_routing(api, plugins):
    rows = by_name(api)
    assert rows["example"] == {"name": "example", "package": "rusta-example-plugin", "version": "1.0",
                               "builtin": False, "checks_config": True, "gateway_wide": False, "routes": [],
                               "error": None}
    assert rows["raising"]["checks_config"] is False
    assert rows["ai_routing"]["builtin"] is True


def test_it_names_the_routes_and_the_gateway_wide_list_that_run_each(api, route_doc, plugins, staff_user):
    services.save_route(route_doc(name="b", external_path="/b", plugins=[{"name": "example"}]), actor=staff_user,
                        source="api")
    services.save_route(route_doc(name="a", external_path="/a", plugins=[{"name": "example"}, {"name": "raising"}],
                                  ai_policy={"strategy": "latency_prediction"}), actor=staff_user, source="api")
    assert api.patch("/api/config/settings/", {"plugins": [{"name": "recording"}]}, format="json").status_code == 200
    rows = by_name(api)
    assert rows["example"]["routes"] == ["a", "b"] and rows["raising"]["routes"] == ["a"]
    assert rows["recording"]["gateway_wide"] is True and rows["example"]["gateway_wide"] is False
    assert rows["ai_routing"]["routes"] == ["a"]


def test_a_package_that_cannot_be_imported_says_why(api, tmp_path, plugins):
    info = tmp_path / "rusta_gone-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rusta-gone\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[rusta.plugins]\ngone = rusta_gone_nowhere:factory\n")
    assert by_name(api)["gone"]["error"].startswith("ModuleNotFoundError: ")


def test_viewers_read_it_and_anonymous_clients_are_refused(client, plugins):
    assert client.get(URL).status_code in (401, 403)
