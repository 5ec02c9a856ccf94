"""/api/config/settings/: the gateway-wide blocks read, replaced (PUT) and changed (PATCH) like an import would."""
from __future__ import annotations

import json

import pytest

from routes import import_export, services
from routes.models import AuditEntry, GatewaySettings
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

URL = "/api/config/settings/"
JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"  # long enough for HS256 (32 bytes)
AI_KEY = "sk-ai-key-that-must-never-show"
BLOCKS = ("jwt", "rate_limit", "ai", "cors", "limits", "ip_rules", "security_headers", "plugins")


@pytest.fixture
def stored():
    import_export.import_config({"jwt": {"secret": JWT_SECRET, "issuer": "me"}, "ai": {"provider": "openai",
                                                                                   "api_key": AI_KEY},
                            "rate_limit": {"limit": 10, "window_s": 60}, "routers": []},
                           actor=None, source="import")


def version() -> int:
    return services.config_version().version


def settings_row() -> GatewaySettings:
    return GatewaySettings.objects.get()


def test_get_answers_every_block_with_secrets_redacted(api, stored):
    response = api.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert tuple(body) == BLOCKS
    assert body["jwt"] == {"secret": REDACTED, "issuer": "me"}
    assert body["ai"] == {"provider": "openai", "api_key": REDACTED}
    assert body["cors"] is None
    assert JWT_SECRET not in response.content.decode() and AI_KEY not in response.content.decode()


def test_get_before_any_setting_answers_empty_blocks_and_writes_nothing(api):
    assert api.get(URL).json() == dict.fromkeys(BLOCKS)
    assert not GatewaySettings.objects.exists()


def test_patch_changes_only_the_blocks_it_names(api, stored):
    response = api.patch(URL, {"ip_rules": {"deny": ["10.0.0.13"]}}, format="json")
    assert response.status_code == 200, response.json()
    row = settings_row()
    assert row.ip_rules == {"deny": ["10.0.0.13"]}
    assert row.jwt == {"secret": JWT_SECRET, "issuer": "me"} and row.rate_limit == {"limit": 10, "window_s": 60}
    body = response.json()
    assert (body["added"], body["changed"], body["removed"], body["dry_run"]) == (["ip_rules"], [], [], False)
    assert body["settings"]["ip_rules"] == {"deny": ["10.0.0.13"]}
    assert body["settings"]["jwt"]["secret"] == REDACTED


def test_patch_with_null_clears_that_block(api, stored):
    body = api.patch(URL, {"rate_limit": None}, format="json").json()
    assert settings_row().rate_limit is None
    assert body["removed"] == ["rate_limit"]
    assert settings_row().ai == {"provider": "openai", "api_key": AI_KEY}


def test_put_replaces_every_block_and_clears_the_ones_left_out(api, stored):
    body = api.put(URL, {"rate_limit": {"limit": 5, "window_s": 1}}, format="json").json()
    row = settings_row()
    assert (row.rate_limit, row.jwt, row.ai) == ({"limit": 5, "window_s": 1}, None, None)
    assert (body["changed"], body["removed"]) == (["rate_limit"], ["jwt", "ai"])


def test_what_get_answers_put_takes_back_keeping_the_secrets_and_changing_nothing(api, stored):
    before = (version(), AuditEntry.objects.count())
    document = api.get(URL).json()
    response = api.put(URL, document, format="json")
    assert response.status_code == 200, response.json()
    assert settings_row().jwt["secret"] == JWT_SECRET and settings_row().ai["api_key"] == AI_KEY
    assert (response.json()["changed"], response.json()["version"]) == ([], before[0])
    assert (version(), AuditEntry.objects.count()) == before


def test_a_redacted_secret_sent_back_with_a_changed_block_is_kept(api, stored):
    api.patch(URL, {"jwt": {"secret": REDACTED, "issuer": "you"}}, format="json")
    assert settings_row().jwt == {"secret": JWT_SECRET, "issuer": "you"}


def test_a_redacted_secret_with_none_stored_behind_it_is_refused(api):
    response = api.patch(URL, {"jwt": {"secret": REDACTED}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["jwt.secret"]
    assert not GatewaySettings.objects.exists()


def test_it_refuses_unknown_key_by_path_and_changes_nothing(api, stored):
    before = (version(), AuditEntry.objects.count(), settings_row().rate_limit)
    response = api.patch(URL, {"rate_limit": {"limit": 10, "windw": 60}, "ai": {"provider": "x", "temp": 1}},
                         format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"rate_limit.windw", "ai.temp"} <= set(errors)
    assert errors["ai.temp"] == [
        "Unknown key; ai knows api_key, base_url, max_concurrency, model, provider, timeout_ms."]
    assert (version(), AuditEntry.objects.count(), settings_row().rate_limit) == before


def test_it_refuses_an_unknown_block_by_name(api, stored):
    response = api.patch(URL, {"rate_limt": {"limit": 1}}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["rate_limt"][0].startswith("Unknown settings block; the blocks are jwt, ")


def test_a_block_that_is_not_an_object_is_refused(api, stored):
    response = api.patch(URL, {"cors": ["https://app.example.com"]}, format="json")
    assert response.json() == {"errors": {"cors": ["Must be an object or null."]}}


def test_a_put_without_a_body_is_refused_instead_of_clearing_every_block(api, stored):
    response = api.put(URL)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [""]
    assert settings_row().jwt["secret"] == JWT_SECRET


def test_a_put_of_an_empty_object_clears_every_block(api, stored):
    assert api.put(URL, {}, format="json").json()["removed"] == ["jwt", "rate_limit", "ai"]
    assert api.get(URL).json() == dict.fromkeys(BLOCKS)


def test_a_body_that_is_not_an_object_is_refused_as_a_whole(api):
    response = api.put(URL, [], format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [""]


@pytest.mark.parametrize("block", [
    {"ip_rules": {"allow": ["10.0.0.0/33"]}},
    {"rate_limit": {"limit": -1, "window_s": 60}},
    {"cors": {"origins": ["*"], "credentials": True}},
    {"jwt": {"algorithms": ["HS256"]}},
])
def test_a_block_is_refused_with_the_errors_an_import_gives_it(api, block):
    response = api.patch(URL, block, format="json")
    assert response.status_code == 400
    with pytest.raises(services.ConfigError) as imported:
        import_export.import_config({**block, "routers": []}, actor=None, source="import")
    assert response.json()["errors"] == imported.value.errors


def test_each_changed_block_gets_one_audit_row_naming_the_user_and_the_api(api, stored):
    api.patch(URL, {"jwt": {"secret": REDACTED, "issuer": "you"}, "cors": {"origins": ["https://a.example"]},
                    "rate_limit": {"limit": 10, "window_s": 60}}, format="json")
    rows = AuditEntry.objects.filter(source="api").order_by("id")
    assert [(r.action, r.object_type, r.object_repr, r.actor_name) for r in rows] == [
        ("update", "settings", "jwt", "alice"), ("update", "settings", "cors", "alice")]
    assert rows[0].changes == {"jwt": [{"secret": REDACTED, "issuer": "me"}, {"secret": REDACTED, "issuer": "you"}]}
    assert JWT_SECRET not in json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_a_change_bumps_the_version_once_and_no_change_keeps_it(api, stored):
    start = version()
    body = api.patch(URL, {"limits": {"max_body_bytes": 1024}, "ip_rules": {"deny": ["10.0.0.1"]}},
                     format="json").json()
    assert body["version"] == version() == start + 1
    api.patch(URL, {"limits": {"max_body_bytes": 1024}}, format="json")
    assert version() == start + 1


def test_a_dry_run_answers_what_the_change_would_do_and_changes_nothing(api, stored):
    before = (version(), AuditEntry.objects.count(), import_export.export_config(include_secrets=True))
    dry = api.put(f"{URL}?dry_run=true", {"rate_limit": {"limit": 5, "window_s": 1}}, format="json").json()
    assert (version(), AuditEntry.objects.count(), import_export.export_config(include_secrets=True)) == before
    real = api.put(URL, {"rate_limit": {"limit": 5, "window_s": 1}}, format="json").json()
    assert (dry["dry_run"], real["dry_run"]) == (True, False)
    assert dry["version"] == before[0] < real["version"]
    ignored = ("dry_run", "version")
    assert {k: v for k, v in dry.items() if k not in ignored} == {k: v for k, v in real.items() if k not in ignored}


def test_a_viewer_reads_the_settings_but_may_not_change_them(viewer_api, stored):
    assert viewer_api.get(URL).json()["jwt"]["secret"] == REDACTED
    for method in ("put", "patch"):
        response = getattr(viewer_api, method)(URL, {"rate_limit": None}, format="json")
        assert response.status_code == 403
        assert response.json() == {"errors": {"": ["Changing the configuration needs the operator role."]}}
    assert settings_row().rate_limit == {"limit": 10, "window_s": 60}


def test_an_operator_changes_the_settings(operator_api, stored):
    assert operator_api.patch(URL, {"rate_limit": None}, format="json").status_code == 200
    assert AuditEntry.objects.get(source="api").actor_name == "otto"


def test_the_schema_describes_the_three_methods(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/api/config/settings/"]
    assert set(operations) == {"get", "put", "patch"}
    assert operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/GatewaySettings")
    for method in ("put", "patch"):
        assert [p["name"] for p in operations[method]["parameters"]] == ["dry_run"]
        assert operations[method]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/Errors")
    blocks = schema["components"]["schemas"]["GatewaySettings"]["properties"]
    assert set(blocks) == set(BLOCKS)
