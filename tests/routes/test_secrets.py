"""Secrets are write-only: redacted in every document, restored from `<redacted>`, absent from logs and metrics."""
from __future__ import annotations

import logging

import pytest

from routes import import_export, services
from routes.secrets import REDACTED, redact, restore_secrets

SECRET = "s3cr3t-value-that-must-never-ever-leak"


@pytest.mark.parametrize("block", [
    {"secret": SECRET}, {"password": SECRET}, {"api_key": SECRET}, {"token": SECRET}, {"client_secret": SECRET},
    {"access_token": SECRET}, {"private_key": SECRET}, {"passphrase": SECRET}, {"redis_password": SECRET},
    {"nested": [{"secret_access_key": SECRET}]},
])
def test_values_of_secret_keys_are_redacted_at_any_depth(block):
    assert SECRET not in repr(redact(block))


def test_credential_headers_set_by_transformations_are_redacted_in_both_shapes():
    rules = {"headers": [{"action": "set", "name": "Authorization", "value": f"Bearer {SECRET}"},
                         {"action": "set", "name": "X-Env", "value": "prod"}],
             "set": {"X-Api-Key": SECRET}}
    shown = redact(rules)
    assert SECRET not in repr(shown)
    assert shown["headers"][1]["value"] == "prod"


def test_a_password_in_a_url_is_redacted_and_the_rest_kept():
    assert redact({"store_url": f"redis://:{SECRET}@cache:6379/0"}) == {
        "store_url": f"redis://:{REDACTED}@cache:6379/0"}


def test_public_material_is_not_redacted():
    block = {"public_keys": [{"pem": "-----BEGIN PUBLIC KEY-----", "algorithm": "RS256"}],
             "jwks_url": "https://idp.example.com/jwks", "issuer": "https://idp.example.com"}
    assert redact(block) == block


def test_a_redacted_document_sent_back_keeps_every_kind_of_secret():
    stored = {"secret": SECRET, "url": f"redis://:{SECRET}@cache:6379/0",
              "headers": [{"name": "Authorization", "value": SECRET}]}
    missing: list[str] = []
    assert restore_secrets(redact(stored), stored, "jwt", missing) == stored
    assert missing == []


def test_a_private_key_is_redacted_under_any_key():
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    shown = redact({"public_key": pem, "public_keys": [{"pem": pem.replace("BEGIN", "BEGIN RSA")}]})
    assert shown == {"public_key": REDACTED, "public_keys": [{"pem": REDACTED}]}


def test_a_redacted_private_key_sent_back_keeps_the_stored_one():
    stored = {"public_keys": [{"pem": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n", "algorithm": "ES256"}]}
    missing: list[str] = []
    assert restore_secrets(redact(stored), stored, "jwt", missing) == stored
    assert missing == []


def test_a_routes_jwt_secret_and_ftp_password_are_redacted():
    route = {"jwt": {"secret": SECRET, "issuer": "me"}, "ftp": {"username": "u", "password": SECRET}}
    assert redact(route) == {"jwt": {"secret": REDACTED, "issuer": "me"},
                             "ftp": {"username": "u", "password": REDACTED}}


def test_a_redacted_url_without_a_stored_one_is_reported():
    missing: list[str] = []
    restore_secrets({"url": f"redis://:{REDACTED}@cache"}, None, "rate_limit", missing)
    assert missing == ["rate_limit.url"]


@pytest.mark.django_db
def test_secrets_never_reach_the_logs(caplog, api, route_doc):
    caplog.set_level(logging.DEBUG)
    policy = {"strategy": "content_analysis", "api_key": SECRET}
    import_export.import_config({"jwt": {"secret": SECRET}, "routers": [route_doc(ai_policy=policy)]},
                           actor=None, source="import")
    api.get("/api/config/export/")
    api.patch("/api/routes/users/", {"ai_policy": {**policy, "api_key": "<redacted>", "provider": 5}}, format="json")
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"jwt": {"secret": SECRET, "x": 1}, "routers": [route_doc(methods=["FETCH"])]},
                               actor=None, source="import")
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


@pytest.mark.django_db
def test_secrets_never_reach_the_metrics(client, route_doc):
    services.save_route(route_doc(ai_policy={"strategy": "content_analysis", "api_key": SECRET}), actor=None,
                        source="api")
    assert SECRET.encode() not in client.get("/metrics").content


@pytest.mark.django_db
def test_route_secrets_never_reach_the_logs(caplog, api, route_doc):
    caplog.set_level(logging.DEBUG)
    api.post("/api/routes/", route_doc(jwt={"secret": SECRET}), format="json")
    api.post("/api/routes/", {"name": "files", "protocol": "ftp", "external_path": "/files", "methods": ["GET"],
                              "backends": [{"host": "ftp://10.0.0.7"}], "ftp": {"password": SECRET}}, format="json")
    api.get("/api/config/export/")
    api.patch("/api/routes/users/", {"jwt": {"secret": SECRET, "algorithms": ["HS512"]}}, format="json")
    api.patch("/api/routes/files/", {"ftp": {"password": SECRET + "\n", "root": 5}}, format="json")
    assert SECRET not in caplog.text


def test_a_reordered_list_keeps_each_secret_with_its_own_entry_and_a_new_entry_has_none():
    stored = {"targets": [{"provider": "openai", "model": "a", "api_key": "sk-one"},
                          {"name": "second", "provider": "anthropic", "model": "b", "api_key": "sk-two"}]}
    sent = {"targets": [{"name": "second", "provider": "anthropic", "model": "b", "api_key": REDACTED},
                        {"provider": "openai", "model": "a", "api_key": REDACTED},
                        {"provider": "ollama", "model": "c", "api_key": REDACTED}]}
    missing: list[str] = []
    restored = restore_secrets(sent, stored, "llm", missing)
    assert [target["api_key"] for target in restored["targets"]] == ["sk-two", "sk-one", None]
    assert missing == ["llm.targets[2].api_key"]
