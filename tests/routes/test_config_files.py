"""routes.config_files: dump, diff and apply of a configuration document, and the references inside it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from routes import config_files, import_export, services
from routes.config_files import References, apply_config, diff_config, dump_config, validate_config
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"
OTHER_SECRET = "another-secret-of-at-least-32-bytes!"
LOCAL = References(env={}, base_dir=Path("/nonexistent"))


def route(**fields):
    """A route as a document's `routes` section holds it (no name: that is its key)."""
    body = {"external_path": "/users/{id}", "internal_path": "/v1/users/{id}", "methods": ["GET", "PUT"],
            "backends": [{"host": "http://10.0.0.5", "port": 8080, "weight": 2}]}
    if "external_path" in fields:
        body["internal_path"] = ""  # the default template uses {id}
    return {**body, **fields}


def state():
    """Everything an apply may write: the configuration with its secrets, the version, the audit trail."""
    return (import_export.export_config(include_secrets=True), services.config_version().version,
            list(AuditEntry.objects.values_list("id", flat=True)))


def errors_of(data, refs=LOCAL, **options):
    with pytest.raises(services.ConfigError) as caught:
        apply_config(data, actor=None, source="test", refs=refs, **options)
    return caught.value.errors


@pytest.fixture
def stored():
    """A users route with a retry block and a JWT secret, and gateway-wide jwt and rate_limit blocks."""
    apply_config({"settings": {"jwt": {"secret": JWT_SECRET, "issuer": "me"}, "rate_limit": {"limit": 100,
                                                                                            "window_s": 60}},
                  "routes": {"users": route(retry={"max_retries": 1}, jwt={"secret": JWT_SECRET})}},
                 actor=None, source="test", refs=LOCAL)


# --- dump ----------------------------------------------------------------------------------------------------

def test_a_dump_names_routes_by_key_without_ids_or_null_blocks(stored):
    dumped = dump_config()
    assert list(dumped) == ["format_version", "settings", "routes", "consumers", "certificates"]
    body = dumped["routes"]["users"]
    assert "id" not in body and "name" not in body and "id" not in body["backends"][0]
    assert body["retry"] == {"max_retries": 1}
    assert "cors" not in body  # a null block is left out


def test_a_dump_redacts_secrets_unless_asked_for_them(stored):
    assert dump_config()["settings"]["jwt"]["secret"] == REDACTED
    assert dump_config()["routes"]["users"]["jwt"]["secret"] == REDACTED
    assert dump_config(include_secrets=True)["routes"]["users"]["jwt"]["secret"] == JWT_SECRET


def test_a_route_named_like_a_secret_is_dumped_whole(stored):
    apply_config({"routes": {"token": route(external_path="/token")}}, actor=None, source="test", refs=LOCAL)
    assert dump_config()["routes"]["token"]["external_path"] == "/token"


def test_applying_a_dump_changes_nothing(stored):
    before = state()
    result = apply_config(json.loads(json.dumps(dump_config())), actor=None, source="test", refs=LOCAL, prune=True)
    assert not result.changed
    assert result.unchanged == ["users"]
    assert state() == before


# --- apply ---------------------------------------------------------------------------------------------------

def test_an_apply_creates_updates_and_prunes_routes_as_one_audited_change(stored):
    apply_config({"routes": {"old": route(external_path="/old")}}, actor=None, source="test", refs=LOCAL)
    version = services.config_version().version
    audit_rows = AuditEntry.objects.count()
    result = apply_config({"routes": {"users": route(retry={"max_retries": 3}, jwt={"secret": REDACTED}),
                                      "orders": route(external_path="/orders")}},
                          actor=None, source="test", refs=LOCAL, prune=True)
    assert (result.created, result.updated, result.deleted) == (["orders"], ["users"], ["old"])
    assert sorted(Route.objects.values_list("name", flat=True)) == ["orders", "users"]
    assert services.config_version().version == version + 1
    assert AuditEntry.objects.count() == audit_rows + 1
    entry = AuditEntry.objects.first()
    assert (entry.action, entry.object_type, entry.object_id) == ("apply", "config", str(version + 1))
    assert entry.changes["routes.users.retry.max_retries"] == [1, 3]
    assert entry.changes["routes.old"][1] is None and entry.changes["routes.orders"][0] is None


def test_an_apply_without_prune_keeps_the_routes_and_blocks_the_document_lacks(stored):
    apply_config({"settings": {"rate_limit": None}, "routes": {"orders": route(external_path="/orders")}},
                 actor=None, source="test", refs=LOCAL)
    assert sorted(Route.objects.values_list("name", flat=True)) == ["orders", "users"]
    settings = services.gateway_settings()
    assert settings.rate_limit is None  # null clears the block it names
    assert settings.jwt == {"secret": JWT_SECRET, "issuer": "me"}


def test_a_section_left_out_is_not_managed(stored):
    result = apply_config({"settings": {"rate_limit": {"limit": 5, "window_s": 60}}}, actor=None, source="test",
                          refs=LOCAL)
    assert result.settings_changed == ["rate_limit"]
    assert Route.objects.filter(name="users").exists()


def test_with_prune_a_section_left_out_is_emptied(stored):
    result = apply_config({"settings": {"jwt": {"secret": REDACTED, "issuer": "me"}}}, actor=None, source="test",
                          refs=LOCAL, prune=True)
    assert result.deleted == ["users"] and result.settings_removed == ["rate_limit"]
    assert not Route.objects.exists()


def test_a_document_without_any_section_is_refused_even_with_prune(stored):
    assert "" in errors_of({"format_version": 1}, prune=True)
    assert Route.objects.exists()


def test_an_invalid_document_changes_nothing_and_names_every_error_by_its_path(stored):
    before = state()
    errors = errors_of({
        "settings": {"rate_limit": {"limit": 100, "window_s": 0}, "rate_limt": {}},
        "routes": {"users": route(backends=[{"host": "http://10.0.0.5", "port": 0}], retry={"max_retires": 2}),
                   "api.v1": route(external_path="nope"), "orders": route(id=4, name="other")},
        "upstreams": {},
    }, prune=True)
    for path in ("settings.rate_limit.window_s", "settings.rate_limt", "routes.users.backends[0].port",
                 "routes.users.retry.max_retires", 'routes["api.v1"].external_path', "routes.orders.id",
                 "routes.orders.name", "upstreams"):
        assert path in errors, path
    assert state() == before


def test_a_dry_run_reports_the_apply_and_changes_nothing(stored):
    before = state()
    result = apply_config({"routes": {"users": route(retry={"max_retries": 3})}}, actor=None, source="test",
                          refs=LOCAL, dry_run=True)
    assert result.updated == ["users"] and not result.applied
    assert state() == before


# --- diff ----------------------------------------------------------------------------------------------------

def test_a_diff_names_each_changed_value_by_path_and_changes_nothing(stored):
    before = state()
    result = diff_config({"routes": {"users": route(retry={"max_retries": 3, "initial_backoff_ms": 50},
                                                    jwt={"secret": REDACTED}, methods=["GET"])}}, refs=LOCAL)
    assert [change.as_dict() for change in result.changes] == [
        {"path": "routes.users.methods", "op": "change", "secret": False, "old": ["GET", "PUT"], "new": ["GET"]},
        {"path": "routes.users.retry.max_retries", "op": "change", "secret": False, "old": 1, "new": 3},
        {"path": "routes.users.retry.initial_backoff_ms", "op": "add", "secret": False, "new": 50},
    ]
    assert state() == before


def test_after_an_apply_the_diff_of_the_same_document_is_empty(stored):
    document = {"settings": {"ai": None}, "routes": {"users": route(retry={"max_retries": 3}, jwt={"secret": REDACTED}),
                                                     "orders": route(external_path="/orders")}}
    assert diff_config(document, refs=LOCAL, prune=True).changed
    apply_config(document, actor=None, source="test", refs=LOCAL, prune=True)
    assert not diff_config(document, refs=LOCAL, prune=True).changed


def test_a_changed_secret_is_shown_as_changed_without_its_values(stored):
    result = diff_config({"settings": {"jwt": {"secret": OTHER_SECRET, "issuer": "me"}}}, refs=LOCAL)
    assert [change.as_dict() for change in result.changes] == [
        {"path": "settings.jwt.secret", "op": "change", "secret": True}]
    result = apply_config({"settings": {"jwt": {"secret": OTHER_SECRET, "issuer": "me"}}}, actor=None,
                          source="test", refs=LOCAL)
    audited = json.dumps(AuditEntry.objects.first().changes)
    assert JWT_SECRET not in audited and OTHER_SECRET not in audited
    assert OTHER_SECRET not in json.dumps(result.as_dict())


def test_a_new_route_with_a_secret_is_shown_redacted(stored):
    result = diff_config({"routes": {"orders": route(external_path="/orders", jwt={"secret": OTHER_SECRET})}},
                         refs=LOCAL)
    assert result.changes[0].as_dict()["new"]["jwt"] == {"secret": REDACTED}


def test_redacted_on_a_new_route_is_an_error_by_path(stored):
    errors = errors_of({"routes": {"orders": route(external_path="/orders", jwt={"secret": REDACTED})}})
    assert "none is stored here" in errors["routes.orders.jwt.secret"][0]


# --- references ----------------------------------------------------------------------------------------------

def test_environment_and_file_references_are_resolved_anywhere_in_a_string(tmp_path):
    (tmp_path / "secret.txt").write_text(JWT_SECRET + "\n")
    refs = References(env={"API_HOST": "10.0.0.9", "TEAM": "billing"}, base_dir=tmp_path)
    apply_config({"routes": {"users": route(backends=[{"host": "http://${env:API_HOST}", "port": 80,
                                                       "description": "owned by ${env:TEAM}, $${not:a-reference}"}],
                                            jwt={"secret": "${file:secret.txt}"})}},
                 actor=None, source="test", refs=refs)
    stored = Route.objects.get(name="users")
    backend = stored.backends.get()
    assert (backend.host, backend.description) == ("10.0.0.9", "owned by billing, ${not:a-reference}")
    assert stored.jwt == {"secret": JWT_SECRET}


def test_a_reference_that_cannot_be_resolved_is_its_values_one_error(tmp_path):
    refs = References(env={}, base_dir=tmp_path)
    errors = errors_of({"settings": {"jwt": {"secret": "${env:JWT_SECRET}"}},
                        "routes": {"users": route(jwt={"secret": "${file:absent.txt}"},
                                                  internal_path="${vault:x}")}}, refs=refs)
    assert errors["settings.jwt.secret"] == ["The environment variable JWT_SECRET is not set."]
    assert errors["routes.users.jwt.secret"][0].startswith(f"Cannot read {tmp_path / 'absent.txt'}")
    assert len(errors["routes.users.jwt.secret"]) == 1  # not also "too short": the reference is no value
    assert errors["routes.users.internal_path"][0].startswith("Unknown reference ${vault:x}; use ${env:NAME}")


def test_references_are_refused_where_nothing_may_resolve_them(stored):
    errors = errors_of({"settings": {"jwt": {"secret": "${env:RUSTA_SECRET_KEY}"}},
                        "routes": {"users": route(internal_path="/${file:/etc/hostname}")}}, refs=References())
    assert "only by `manage.py config`" in errors["settings.jwt.secret"][0]
    assert "only by `manage.py config`" in errors["routes.users.internal_path"][0]


def test_a_file_reference_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(config_files, "MAX_FILE_REFERENCE_BYTES", 8)
    (tmp_path / "big").write_text("x" * 9)
    errors = errors_of({"routes": {"users": route(jwt={"secret": "${file:big}"})}},
                       refs=References(env={}, base_dir=tmp_path))
    assert "larger than 8 bytes" in errors["routes.users.jwt.secret"][0]


def test_validate_reports_errors_and_writes_nothing(stored):
    before = state()
    validate_config({"routes": {"users": route(retry={"max_retries": 3})}}, refs=LOCAL)
    with pytest.raises(services.ConfigError) as caught:
        validate_config({"routes": {"users": route(methods="GET")}}, refs=LOCAL)
    assert "routes.users.methods" in caught.value.errors
    assert state() == before
