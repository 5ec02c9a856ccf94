"""/api/config/: the whole configuration, its status, reload, export and import."""
from __future__ import annotations

import json

import pytest

from protocols.table import live
from routes import import_export, services
from routes.models import AuditEntry, ConfigState, GatewaySettings, Route
from routes.secrets import REDACTED
from routes.snapshot import build_table
from tests.support.compat import kairos_examples, load

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"  # long enough for HS256 (32 bytes)


@pytest.fixture
def live_table():
    """This process's live table, put back as it was after the test."""
    saved = (live.table, live.loaded, live.health, live.health_version)
    yield live
    live.table, live.loaded, live.health, live.health_version = saved


@pytest.fixture
def stored(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET, "issuer": "me"}, "routers": [route_doc()]},
                           actor=None, source="import")


def test_the_configuration_is_the_export_with_secrets_redacted_plus_status(api, stored):
    body = api.get("/api/config/").json()
    assert body["jwt"] == {"secret": REDACTED, "issuer": "me"}
    assert [r["name"] for r in body["routers"]] == ["users"]
    assert body["status"]["database"]["version"] == services.config_version().version
    assert JWT_SECRET not in json.dumps(body)


def test_the_status_shows_the_stored_and_the_live_version(api, stored, live_table):
    live_table.install(build_table())
    body = api.get("/api/config/status/").json()
    assert body["database"]["version"] == body["live"]["version"] == services.config_version().version
    assert body["live"]["routes"] == 1
    assert body["live"]["built_at"] is not None
    assert body["in_sync"] is True


def test_the_status_shows_a_live_table_behind_the_database(api, stored, live_table, route_doc):
    live_table.install(build_table())
    api.post("/api/routes/", route_doc(name="more", external_path="/more"), format="json")
    body = api.get("/api/config/status/").json()
    assert body["live"]["version"] == body["database"]["version"] - 1
    assert body["in_sync"] is False


def test_reload_bumps_the_version_and_answers_it(api, stored):
    before = services.config_version().version
    response = api.post("/api/config/reload/")
    assert response.status_code == 200
    assert response.json() == {"version": before + 1}
    assert AuditEntry.objects.filter(action="reload", actor_name="alice").exists()


def test_the_export_downloads_a_redacted_json_file(api, stored):
    response = api.get("/api/config/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = json.loads(response.content)
    assert body == import_export.export_config()
    assert body["jwt"]["secret"] == REDACTED


def test_an_exported_file_imports_back_to_the_same_configuration(api, stored):
    exported = json.loads(api.get("/api/config/export/").content)
    response = api.post("/api/config/import/?replace=true", exported, format="json")
    assert response.status_code == 200, response.json()
    assert json.loads(api.get("/api/config/export/").content) == exported
    assert services.gateway_settings().jwt["secret"] == JWT_SECRET


def test_an_import_answers_what_it_changed_and_the_unknown_keys(api, stored, route_doc):
    data = {"routers": [route_doc(read_timeout_ms=10), route_doc(name="new", external_path="/new", foo=1)]}
    body = api.post("/api/config/import/", data, format="json").json()
    assert (body["created"], body["updated"], body["deleted"]) == (["new"], ["users"], [])
    assert body["unknown_keys"] == ["routers[1].foo"]
    assert body["version"] == services.config_version().version


def test_an_import_answers_the_settings_blocks_it_changed_by_name(api, stored, route_doc):
    data = {"jwt": {"secret": JWT_SECRET, "issuer": "you"}, "rate_limit": {"limit": 10, "window_s": 60},
            "routers": [route_doc()]}
    response = api.post("/api/config/import/", data, format="json")
    body = response.json()
    assert (body["settings_added"], body["settings_changed"], body["settings_removed"]) == (
        ["rate_limit"], ["jwt"], [])
    assert (body["created"], body["updated"], body["unchanged"], body["deleted"]) == ([], [], ["users"], [])
    assert body["dry_run"] is False
    assert JWT_SECRET not in response.content.decode()


def test_an_import_dry_run_answers_what_a_real_one_does_and_changes_nothing(api, stored, route_doc):
    data = {"rate_limit": {"limit": 10, "window_s": 60}, "routers": [route_doc(read_timeout_ms=10),
                                                     route_doc(name="new", external_path="/new")]}
    before = (import_export.export_config(include_secrets=True), services.config_version().version,
              AuditEntry.objects.count())
    dry = api.post("/api/config/import/?replace=true&dry_run=true", data, format="json").json()
    assert (import_export.export_config(include_secrets=True), services.config_version().version,
            AuditEntry.objects.count()) == before
    real = api.post("/api/config/import/?replace=true", data, format="json").json()
    assert (dry["dry_run"], real["dry_run"]) == (True, False)
    assert dry["version"] == before[1] < real["version"]
    ignored = ("dry_run", "version")
    assert {k: v for k, v in dry.items() if k not in ignored} == {k: v for k, v in real.items() if k not in ignored}
    assert (real["created"], real["updated"], real["settings_added"], real["settings_removed"]) == (
        ["new"], ["users"], ["rate_limit"], ["jwt"])


def test_an_import_with_replace_makes_the_database_equal_the_file(api, stored, route_doc):
    body = api.post("/api/config/import/?replace=true",
                    {"routers": [route_doc(name="only", external_path="/only")]}, format="json").json()
    assert body["deleted"] == ["users"]
    assert list(Route.objects.values_list("name", flat=True)) == ["only"]


def test_an_import_without_replace_keeps_other_routes(api, stored, route_doc):
    api.post("/api/config/import/", {"routers": [route_doc(name="only", external_path="/only")]}, format="json")
    assert Route.objects.count() == 2


def test_an_invalid_import_answers_errors_by_path_and_changes_nothing(api, stored, route_doc):
    before = import_export.export_config()
    data = {"routers": [route_doc(name="x", external_path="/x"), {"external_path": "/y", "methods": ["GET"]}]}
    response = api.post("/api/config/import/?replace=true", data, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["routers[1].backends"]
    assert import_export.export_config() == before


def test_a_replace_flag_that_is_not_a_boolean_is_refused(api, stored):
    response = api.post("/api/config/import/?replace=maybe", {"routers": []}, format="json")
    assert response.status_code == 400
    assert "replace" in response.json()["errors"]
    assert Route.objects.count() == 1


def test_a_malformed_import_body_is_a_bad_request(api, stored):
    response = api.post("/api/config/import/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert Route.objects.count() == 1


@pytest.mark.parametrize("path", kairos_examples())
def test_every_example_of_the_earlier_gateway_imports(api, path):
    data = load(path)
    response = api.post("/api/config/import/?replace=true", data, format="json")
    assert response.status_code == 200, response.json()
    assert Route.objects.count() == len(data["routers"])


def test_reading_an_empty_configuration_writes_nothing(api):
    body = api.get("/api/config/").json()
    assert body["routers"] == []
    assert body["status"]["database"] == {"version": 0, "changed_at": None, "health_version": 0}
    assert not ConfigState.objects.exists() and not GatewaySettings.objects.exists()


def test_the_status_shows_the_health_version_and_the_backends_this_process_takes_out(api, stored, live_table):
    backend = Route.objects.get().backends.first()
    services.bump_health_version()
    live_table.install_health({backend.pk: False}, services.config_version().health_version)
    body = api.get("/api/config/status/").json()
    assert body["database"]["health_version"] == body["live"]["health_version"] == 1
    assert body["live"]["down_backends"] == [backend.pk]
    assert body["health_in_sync"] is True


def test_the_status_shows_a_health_overlay_behind_the_database(api, stored, live_table):
    live_table.install_health({}, 0)
    services.bump_health_version()
    body = api.get("/api/config/status/").json()
    assert (body["live"]["health_version"], body["database"]["health_version"]) == (0, 1)
    assert body["health_in_sync"] is False


def test_the_resilience_blocks_survive_an_export_and_import(api, route_doc):
    services.save_route(route_doc(health_check={"interval_s": 1}, circuit_breaker={"open_s": 2},
                                  total_timeout_ms=900), actor=None, source="api")
    exported = api.get("/api/config/export/").json()
    assert exported["routers"][0]["health_check"] == {"interval_s": 1}
    Route.objects.all().delete()
    assert api.post("/api/config/import/", exported, format="json").status_code == 200
    route = Route.objects.get()
    assert (route.health_check, route.circuit_breaker, route.total_timeout_ms) == (
        {"interval_s": 1}, {"open_s": 2}, 900)
