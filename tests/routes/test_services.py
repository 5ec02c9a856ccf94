"""routes.services: every write is validated, audited with who and what, and bumps the configuration version."""
from __future__ import annotations

import pytest

from routes import import_export, services
from routes.health.models import BackendHealth, HealthState
from routes.models import AuditEntry, Backend, Route
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"  # long enough for HS256 (32 bytes)


def version() -> int:
    return services.config_version().version


def test_creating_a_route_records_who_created_it_and_what(staff_user, route_doc):
    route = services.save_route(route_doc(), actor=staff_user, source="api")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_name, entry.source, entry.action) == (staff_user, "alice", "api", "create")
    assert (entry.object_type, entry.object_id, entry.object_repr) == ("route", str(route.pk), "users")
    assert entry.changes["external_path"] == [None, "/users/{id}"]


def test_creating_a_route_stores_its_backends_in_order(route_doc):
    route = services.save_route(route_doc(), actor=None, source="command")
    assert [(b.scheme, b.host, b.port, b.weight) for b in route.backends.all()] == [
        ("http", "10.0.0.5", 8080, 2), ("http", "10.0.0.6", 8080, 1),
    ]


def test_every_change_bumps_the_version(staff_user, route_doc):
    start = version()
    route = services.save_route(route_doc(), actor=staff_user, source="api")
    assert version() == start + 1
    services.save_route({"priority": 5}, actor=staff_user, source="api", route=route, partial=True)
    assert version() == start + 2
    services.delete_route(route, actor=staff_user, source="api")
    assert version() == start + 3
    assert services.request_reload(actor=staff_user, source="api") == start + 4


def test_an_update_audits_only_the_fields_that_changed(staff_user, route_doc):
    route = services.save_route(route_doc(), actor=staff_user, source="api")
    services.save_route({"read_timeout_ms": 1000}, actor=staff_user, source="admin", route=route, partial=True)
    entry = AuditEntry.objects.filter(action="update").get()
    assert entry.changes == {"read_timeout_ms": [30000, 1000]}
    assert entry.source == "admin"


def test_an_invalid_change_saves_nothing(staff_user, route_doc):
    route = services.save_route(route_doc(), actor=staff_user, source="api")
    before = (version(), AuditEntry.objects.count(), services.route_document(route))
    with pytest.raises(services.ConfigError) as caught:
        services.save_route({"external_path": "no-slash", "backends": []}, actor=staff_user, source="api",
                            route=route, partial=True)
    assert set(caught.value.errors) == {"external_path", "backends"}
    route.refresh_from_db()
    assert (version(), AuditEntry.objects.count(), services.route_document(route)) == before


def test_a_route_without_a_name_gets_one_from_its_path(route_doc):
    doc = route_doc()
    del doc["name"]
    assert services.save_route(doc, actor=None, source="api").name == "users-id"


def test_two_routes_cannot_share_a_name(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(external_path="/other"), actor=None, source="api")
    assert "already exists" in caught.value.errors["name"][0]


def test_an_id_copied_into_a_new_route_does_not_hide_a_clash(route_doc):
    first = services.save_route(route_doc(), actor=None, source="api")
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(name="copy", id=first.pk), actor=None, source="api")
    assert "users" in caught.value.errors["external_path"][0]
    assert Route.objects.count() == 1


def test_deleting_a_route_keeps_its_document_in_the_audit(staff_user, route_doc):
    route = services.save_route(route_doc(), actor=staff_user, source="api")
    services.delete_route(route, actor=staff_user, source="admin")
    entry = AuditEntry.objects.get(action="delete")
    assert entry.changes["external_path"] == ["/users/{id}", None]
    assert not Route.objects.exists()


def test_enabling_a_route_that_would_clash_changes_nothing(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    twin = services.save_route(route_doc(name="twin", enabled=False), actor=None, source="api")
    with pytest.raises(services.ConfigError):
        services.set_enabled([twin], True, actor=None, source="admin")
    twin.refresh_from_db()
    assert twin.enabled is False


def test_disabling_routes_reports_how_many_changed(route_doc):
    one = services.save_route(route_doc(), actor=None, source="api")
    two = services.save_route(route_doc(name="two", external_path="/two", enabled=False), actor=None, source="api")
    assert services.set_enabled([one, two], False, actor=None, source="admin") == 1
    assert not Route.objects.filter(enabled=True).exists()


def test_secrets_are_redacted_in_the_audit(route_doc):
    policy = {"enabled": True, "strategy": "content_analysis", "api_key": "sk-123"}
    services.save_route(route_doc(ai_policy=policy), actor=None, source="api")
    assert AuditEntry.objects.get().changes["ai_policy"] == [None, {**policy, "api_key": REDACTED}]


def test_sending_a_redacted_secret_back_keeps_the_stored_one(route_doc):
    policy = {"enabled": True, "strategy": "content_analysis", "api_key": "sk-123"}
    route = services.save_route(route_doc(ai_policy=policy), actor=None, source="api")
    shown = services.redact(services.route_document(route))
    shown["priority"] = 3
    route = services.save_route(shown, actor=None, source="api", route=route)
    assert route.ai_policy["api_key"] == "sk-123"


def test_a_redacted_secret_with_nothing_stored_is_an_error(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(ai_policy={"strategy": "content_analysis", "api_key": REDACTED}), actor=None,
                            source="api")
    assert list(caught.value.errors) == ["ai_policy.api_key"]


def test_an_ipv6_backend_is_shown_in_brackets_and_survives_a_round_trip(route_doc):
    route = services.save_route(route_doc(backends=[{"host": "http://[::1]", "port": 8080}]), actor=None,
                                source="api")
    assert services.route_document(route)["backends"][0]["host"] == "http://[::1]"
    exported = import_export.export_config()
    import_export.import_config(exported, actor=None, source="import", replace=True)
    assert import_export.export_config() == exported


# --- Backends are updated in place, so their ids (and health history) survive a route edit --------------------

def backend_ids(route: Route) -> dict[str, int]:
    return {b.url: b.pk for b in Backend.objects.filter(route=route)}


def test_editing_a_route_keeps_the_ids_of_backends_it_still_has(route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    before = backend_ids(route)
    services.save_route({"priority": 4, "backends": [{"host": "http://10.0.0.6", "port": 8080, "weight": 9},
                                                     {"host": "http://10.0.0.5", "port": 8080}]},
                        actor=None, source="api", route=route, partial=True)
    assert backend_ids(route) == before
    assert [(b.url, b.weight, b.position) for b in route.backends.all()] == [
        ("http://10.0.0.6:8080", 9, 0), ("http://10.0.0.5:8080", 1, 1),
    ]


def test_only_added_backends_are_created_and_only_removed_ones_deleted(route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    before = backend_ids(route)
    kept = before["http://10.0.0.5:8080"]
    services.save_route({"backends": [{"host": "http://10.0.0.5", "port": 8080},
                                      {"host": "http://10.0.0.7", "port": 8080}]},
                        actor=None, source="api", route=route, partial=True)
    after = backend_ids(route)
    assert set(after) == {"http://10.0.0.5:8080", "http://10.0.0.7:8080"}
    assert after["http://10.0.0.5:8080"] == kept
    assert after["http://10.0.0.7:8080"] not in before.values()


def test_a_backend_on_another_port_is_a_new_backend(route_doc):
    route = services.save_route(route_doc(backends=[{"host": "http://10.0.0.5", "port": 8080}]), actor=None,
                                source="api")
    old = backend_ids(route)["http://10.0.0.5:8080"]
    services.save_route({"backends": [{"host": "http://10.0.0.5", "port": 8081}]}, actor=None, source="api",
                        route=route, partial=True)
    assert list(backend_ids(route).values()) != [old]
    assert not Backend.objects.filter(pk=old).exists()


def test_a_backends_health_history_survives_a_route_edit(route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    backend = route.backends.get(port=8080, host="10.0.0.5")
    BackendHealth.objects.update_or_create(backend=backend,
        defaults={"state": HealthState.UNHEALTHY, "reason": "status 503"})
    services.save_route({"read_timeout_ms": 1000, "backends": [{"host": "http://10.0.0.5", "port": 8080}]},
                        actor=None, source="api", route=route, partial=True)
    assert BackendHealth.objects.get(pk=backend.pk).reason == "status 503"


def test_the_resilience_fields_are_stored_shown_and_audited(route_doc):
    route = services.save_route(route_doc(health_check={"interval_s": 1}, circuit_breaker={"open_s": 3},
                                          total_timeout_ms=1500), actor=None, source="api")
    doc = services.route_document(route)
    assert (doc["health_check"], doc["circuit_breaker"], doc["total_timeout_ms"]) == (
        {"interval_s": 1}, {"open_s": 3}, 1500)
    services.save_route({"circuit_breaker": None}, actor=None, source="api", route=route, partial=True)
    assert AuditEntry.objects.filter(action="update").get().changes == {"circuit_breaker": [{"open_s": 3}, None]}


def test_the_health_version_is_bumped_on_its_own(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    state = services.config_version()
    services.bump_health_version()
    after = services.config_version()
    assert (after.version, after.health_version) == (state.version, state.health_version + 1)
