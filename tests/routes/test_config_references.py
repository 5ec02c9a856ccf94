"""`config dump` writes back the `${env:...}` and `${file:...}` references `config apply` resolved, never secrets."""
from __future__ import annotations

import json

import pytest
import yaml

from routes import services
from routes.config_files import References, apply_config, dump_config
from routes.config_references import ConfigReference
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED
from tests.routes.commands.test_config_command import run

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"
ROUTE_SECRET = "route-secret-of-at-least-32-bytes-99"
OTHER_SECRET = "another-secret-of-at-least-32-bytes!"
TOKEN = "upstream-token-0123456789"
SECRETS = (JWT_SECRET, ROUTE_SECRET, OTHER_SECRET, TOKEN)
ENV = {"TEST_JWT_SECRET": JWT_SECRET, "TEST_ROUTE_SECRET": ROUTE_SECRET, "TEST_TOKEN": TOKEN,
       "TEST_TENANT": "acme", "TEST_HOST": "10.0.0.5"}
DOCUMENT = """\
settings:
  jwt: {secret: "${env:TEST_JWT_SECRET}", issuer: me}
routes:
  users:
    external_path: /users/{id}
    methods: [GET]
    backends: [{host: "http://${env:TEST_HOST}", port: 8080}]
    jwt: {secret: "${env:TEST_ROUTE_SECRET}"}
    request_transformation:
      headers:
        - {action: set, name: Authorization, value: "Bearer ${env:TEST_TOKEN}"}
        - {action: set, name: X-Tenant, value: "${env:TEST_TENANT}"}
"""


@pytest.fixture
def applied(tmp_path, monkeypatch):
    """DOCUMENT applied by `manage.py config apply`, its environment set; the document's path."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "rusta.yaml"
    path.write_text(DOCUMENT)
    assert run("apply", str(path))[0] == 0
    return path


def dumped(tmp_path, *options: str) -> tuple[dict, str]:
    """What `config dump` writes to a YAML file: the document and its text."""
    target = tmp_path / "dump.yaml"
    assert run("dump", str(target), *options)[0] == 0
    text = target.read_text()
    return yaml.safe_load(text), text


def test_dump_writes_back_the_references_of_secrets_and_other_values(applied, tmp_path):
    document, text = dumped(tmp_path)
    assert document["settings"]["jwt"] == {"secret": "${env:TEST_JWT_SECRET}", "issuer": "me"}
    users = document["routes"]["users"]
    assert users["jwt"]["secret"] == "${env:TEST_ROUTE_SECRET}"
    assert users["backends"][0]["host"] == "http://${env:TEST_HOST}"
    assert [rule["value"] for rule in users["request_transformation"]["headers"]] == [
        "Bearer ${env:TEST_TOKEN}", "${env:TEST_TENANT}"]
    assert not any(secret in text for secret in SECRETS)


def test_a_secret_changed_through_the_api_is_dumped_redacted(applied, tmp_path, api):
    response = api.patch("/api/config/settings/", {"jwt": {"secret": OTHER_SECRET, "issuer": "me"}}, format="json")
    assert response.status_code == 200
    document, text = dumped(tmp_path)
    assert document["settings"]["jwt"]["secret"] == REDACTED
    assert document["routes"]["users"]["jwt"]["secret"] == "${env:TEST_ROUTE_SECRET}"
    assert OTHER_SECRET not in text


def test_a_dump_applies_back_and_then_diff_prints_nothing(applied, tmp_path):
    dump = tmp_path / "dump.yaml"
    run("dump", str(dump))
    version, audit = services.config_version().version, AuditEntry.objects.count()
    assert run("apply", str(dump), "--prune")[1].startswith("Nothing to change")
    assert run("diff", str(dump), "--prune") == (0, "", "")
    assert run("diff", str(applied)) == (0, "", "")
    assert (services.config_version().version, AuditEntry.objects.count()) == (version, audit)
    assert dumped(tmp_path)[0]["settings"]["jwt"]["secret"] == "${env:TEST_JWT_SECRET}"


def test_dump_with_include_secrets_writes_the_values(applied, tmp_path):
    document, _ = dumped(tmp_path, "--include-secrets")
    assert document["settings"]["jwt"]["secret"] == JWT_SECRET
    assert document["routes"]["users"]["backends"][0]["host"] == "http://10.0.0.5"
    assert document["routes"]["users"]["request_transformation"]["headers"][0]["value"] == f"Bearer {TOKEN}"


def test_the_apply_audit_row_shows_secrets_redacted_and_no_reference(applied):
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.source) == (AuditEntry.Action.APPLY, "config", "command")
    assert entry.changes["settings.jwt"] == [None, {"secret": REDACTED, "issuer": "me"}]
    assert "${" not in json.dumps(entry.changes)
    assert not any(secret in json.dumps(entry.changes) for secret in SECRETS)


def test_an_apply_that_changes_nothing_still_remembers_its_references(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JWT_SECRET", JWT_SECRET)
    apply_config({"settings": {"jwt": {"secret": JWT_SECRET}}}, actor=None, source="test", refs=References())
    path = tmp_path / "rusta.yaml"
    path.write_text('settings:\n  jwt: {secret: "${env:TEST_JWT_SECRET}"}\n')
    version, audit = services.config_version().version, AuditEntry.objects.count()
    assert run("apply", str(path))[1].startswith("Nothing to change")
    assert (services.config_version().version, AuditEntry.objects.count()) == (version, audit)
    assert dumped(tmp_path)[0]["settings"]["jwt"]["secret"] == "${env:TEST_JWT_SECRET}"


def test_a_value_written_plainly_in_the_next_apply_loses_its_reference(applied, tmp_path):
    applied.write_text(DOCUMENT.replace("${env:TEST_JWT_SECRET}", JWT_SECRET))
    assert run("apply", str(applied))[0] == 0
    document, _ = dumped(tmp_path)
    assert document["settings"]["jwt"]["secret"] == REDACTED
    assert document["routes"]["users"]["jwt"]["secret"] == "${env:TEST_ROUTE_SECRET}"


def test_a_renamed_route_is_dumped_without_the_old_routes_references(applied, tmp_path, api):
    route = Route.objects.get(name="users")
    assert api.patch(f"/api/routes/{route.pk}/", {"name": "people"}, format="json").status_code == 200
    document, text = dumped(tmp_path)
    assert document["routes"]["people"]["jwt"]["secret"] == REDACTED
    assert document["routes"]["people"]["backends"][0]["host"] == "http://10.0.0.5"
    assert ROUTE_SECRET not in text


def test_rows_of_paths_that_are_gone_are_deleted_by_the_next_apply(applied):
    applied.write_text(DOCUMENT.replace("users:", "people:"))
    assert run("apply", str(applied), "--prune")[0] == 0
    assert not ConfigReference.objects.filter(path__startswith="routes.users").exists()
    assert ConfigReference.objects.filter(path="routes.people.jwt.secret").exists()


def test_a_file_reference_is_dumped_as_it_was_written(tmp_path, monkeypatch):
    (tmp_path / "jwt.secret").write_text(JWT_SECRET + "\n")
    path = tmp_path / "rusta.yaml"
    path.write_text('settings:\n  jwt: {secret: "${file:jwt.secret}"}\n')
    assert run("apply", str(path))[0] == 0
    document, text = dumped(tmp_path)
    assert document["settings"]["jwt"]["secret"] == "${file:jwt.secret}"
    assert JWT_SECRET not in text


def test_api_keys_applied_by_reference_are_neither_remembered_nor_dumped(tmp_path, monkeypatch):
    key = "rk_" + "Kq7-Lm2_" * 4
    monkeypatch.setenv("TEST_BILLING_KEY", key)
    path = tmp_path / "rusta.yaml"
    path.write_text('consumers:\n  billing:\n    api_keys: [{key: "${env:TEST_BILLING_KEY}"}]\n')
    assert run("apply", str(path))[0] == 0
    assert not ConfigReference.objects.exists()
    assert dumped(tmp_path)[0]["consumers"] == {"billing": {"enabled": True, "tags": [], "jwt_subjects": []}}


def test_diff_and_dry_run_remember_nothing(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "rusta.yaml"
    path.write_text(DOCUMENT)
    assert run("diff", str(path))[0] == 2
    assert run("apply", str(path), "--dry-run")[0] == 0
    assert not ConfigReference.objects.exists()


def test_a_literal_reference_saved_through_the_api_is_dumped_escaped_and_applies_back_unchanged(tmp_path,
                                                                                               route_doc):
    rules = {"headers": [{"action": "set", "name": "X-Template", "value": "${env:TEST_UNSET}"}]}
    services.save_route(route_doc(request_transformation=rules), actor=None, source="test")
    dump = tmp_path / "dump.yaml"
    run("dump", str(dump))
    assert yaml.safe_load(dump.read_text())["routes"]["users"]["request_transformation"] == {
        "headers": [{"action": "set", "name": "X-Template", "value": "$${env:TEST_UNSET}"}]}
    assert run("diff", str(dump)) == (0, "", "")


def test_the_http_apply_remembers_no_reference(operator_api):
    rules = {"headers": [{"action": "set", "name": "X-Template", "value": "$${user}"}]}
    document = {"routes": {"users": {"external_path": "/users", "methods": ["GET"], "request_transformation": rules,
                                     "backends": [{"host": "http://10.0.0.5", "port": 8080}]}}}
    assert operator_api.post("/api/config/apply/", document, format="json").status_code == 200
    assert not ConfigReference.objects.exists()


def test_the_settings_api_still_answers_redacted_secrets(applied, viewer_api):
    assert viewer_api.get("/api/config/settings/").json()["jwt"]["secret"] == REDACTED


def test_dump_config_without_references_writes_redacted_secrets(applied):
    assert dump_config()["settings"]["jwt"]["secret"] == REDACTED


def test_a_literal_written_with_dollar_dollar_brace_is_dumped_so_again(tmp_path):
    path = tmp_path / "rusta.yaml"
    rules = '{headers: [{action: set, name: X-Template, value: "$${env:TEST_UNSET}"}]}'
    path.write_text(f"routes:\n  users:\n    external_path: /users\n    methods: [GET]\n"
                    f"    backends: [{{host: \"http://10.0.0.5\", port: 8080}}]\n    request_transformation: {rules}\n")
    assert run("apply", str(path))[0] == 0
    assert Route.objects.get().request_transformation["headers"][0]["value"] == "${env:TEST_UNSET}"
    value = dumped(tmp_path)[0]["routes"]["users"]["request_transformation"]["headers"][0]["value"]
    assert value == "$${env:TEST_UNSET}"
