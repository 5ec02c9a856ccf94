"""routes.import_export: an import matches routes by name, is all or nothing, reports what it changed (routes and
settings blocks) and the keys it does not know, keeps redacted secrets, and a dry run reports exactly what a real run
does."""
from __future__ import annotations

import pytest

from routes import import_export, services
from routes.models import AuditEntry, Backend, Route
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"  # long enough for HS256 (32 bytes)


def version() -> int:
    return services.config_version().version


def test_an_import_matches_routes_by_name(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    report = import_export.import_config({"routers": [route_doc(read_timeout_ms=5), route_doc(name="new",
                                                                                          external_path="/new")]},
                                    actor=None, source="import")
    assert (report.created, report.updated, report.deleted) == (["new"], ["users"], [])
    assert Route.objects.get(name="users").read_timeout_ms == 5



def test_an_import_with_replace_deletes_routes_missing_from_the_file(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    report = import_export.import_config({"routers": [route_doc(name="only", external_path="/only")]}, actor=None,
                                    source="import", replace=True)
    assert report.deleted == ["users"]
    assert list(Route.objects.values_list("name", flat=True)) == ["only"]



def test_an_invalid_import_changes_nothing(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    before = (import_export.export_config(), version(), AuditEntry.objects.count())
    bad = {"jwt": {"secret": JWT_SECRET}, "routers": [route_doc(name="fine", external_path="/fine"),
                                               route_doc(name="bad", methods=["NOPE"])]}
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config(bad, actor=None, source="import", replace=True)
    assert list(caught.value.errors) == ["routers[1].methods"]
    assert (import_export.export_config(), version(), AuditEntry.objects.count()) == before



def test_an_import_that_changes_nothing_keeps_the_version(route_doc):
    import_export.import_config({"routers": [route_doc()]}, actor=None, source="import")
    start = version()
    report = import_export.import_config({"routers": [route_doc()]}, actor=None, source="import")
    assert (report.created, report.updated, version()) == ([], [], start)



def test_an_import_reports_unknown_keys_by_path(route_doc):
    data = {"extensions": {}, "ai": {"provider": "openai", "temperature": 1},
            "routers": [route_doc(), route_doc(name="b", external_path="/b",
                                              ai_policy={"strategy": "content_analysis", "foo": 1})]}
    report = import_export.import_config(data, actor=None, source="import")
    assert report.unknown_keys == ["extensions", "ai.temperature", "routers[1].ai_policy.foo"]



def test_an_exported_file_with_redacted_secrets_keeps_the_stored_ones(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET}, "routers": [route_doc()]}, actor=None,
                           source="import")
    exported = import_export.export_config()
    assert exported["jwt"]["secret"] == REDACTED
    import_export.import_config(exported, actor=None, source="import", replace=True)
    assert services.gateway_settings().jwt == {"secret": JWT_SECRET}



def test_an_import_with_replace_clears_settings_blocks_the_file_lacks(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET}, "ai": {"provider": "openai"}, "routers": []},
                                actor=None, source="import")
    import_export.import_config({"ai": {"provider": "anthropic"}, "routers": []}, actor=None, source="import",
                           replace=True)
    row = services.gateway_settings()
    assert (row.jwt, row.ai) == (None, {"provider": "anthropic"})



def test_an_import_without_replace_keeps_settings_blocks_the_file_lacks(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET}, "routers": []}, actor=None, source="import")
    import_export.import_config({"routers": [route_doc()]}, actor=None, source="import")
    assert services.gateway_settings().jwt == {"secret": JWT_SECRET}



def test_an_import_of_changed_backends_is_audited_with_them(route_doc):
    import_export.import_config({"routers": [route_doc()]}, actor=None, source="import")
    report = import_export.import_config({"routers": [route_doc(backends=[{"host": "http://10.0.0.9", "port": 80}])]},
                                    actor=None, source="import")
    assert report.updated == ["users"]
    entry = AuditEntry.objects.filter(action="import").order_by("-id").first()
    assert entry.changes["backends"][1] == [
        {"id": Backend.objects.get().pk, "host": "http://10.0.0.9", "port": 80, "weight": 1,
         "health_check_path": None, "enabled": True, "description": ""},
    ]



def the_state() -> tuple:
    """Everything an import may write: the configuration with its secrets, the version and the audit trail."""
    return (import_export.export_config(include_secrets=True), version(),
            list(AuditEntry.objects.values_list("id", flat=True)))



def test_an_import_reports_a_settings_block_it_adds_and_the_routes_it_left_alone(route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    report = import_export.import_config({"jwt": {"secret": JWT_SECRET}, "routers": [route_doc()]}, actor=None,
                                    source="import")
    assert (report.settings_added, report.settings_changed, report.settings_removed) == (["jwt"], [], [])
    assert (report.created, report.updated, report.unchanged, report.deleted) == ([], [], ["users"], [])



def test_an_import_reports_settings_blocks_it_changes_and_removes(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET}, "ai": {"provider": "openai"}, "routers": []},
                           actor=None, source="import")
    report = import_export.import_config({"ai": {"provider": "anthropic"}, "routers": []}, actor=None, source="import",
                                    replace=True)
    assert (report.settings_added, report.settings_changed, report.settings_removed) == ([], ["ai"], ["jwt"])



def test_importing_the_same_file_again_reports_nothing_changed(route_doc):
    data = {"jwt": {"secret": JWT_SECRET}, "rate_limit": {"limit": 10, "window_s": 60}, "routers": [route_doc()]}
    import_export.import_config(data, actor=None, source="import")
    report = import_export.import_config(data, actor=None, source="import")
    assert not report.changed
    assert report.unchanged == ["users"]



def test_a_dry_run_reports_what_a_real_run_does_and_changes_nothing(route_doc):
    services.save_route(route_doc(name="old", external_path="/old"), actor=None, source="api")
    services.save_route(route_doc(), actor=None, source="api")
    data = {"jwt": {"secret": JWT_SECRET}, "routers": [route_doc(read_timeout_ms=9),
                                                        route_doc(name="new", external_path="/new")]}
    before = the_state()
    dry = import_export.import_config(data, actor=None, source="import", replace=True, dry_run=True)
    assert the_state() == before
    real = import_export.import_config(data, actor=None, source="import", replace=True)
    assert dry.dry_run and not real.dry_run
    assert {**dry.as_dict(), "dry_run": False} == real.as_dict()
    assert (real.created, real.updated, real.deleted, real.settings_added) == (["new"], ["users"], ["old"], ["jwt"])
