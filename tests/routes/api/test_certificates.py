"""/api/certificates/: TLS certificates by id or name; the key is taken, kept and never shown."""
from __future__ import annotations

import json

import pytest
import trustme
from rest_framework.test import APIClient

from routes.models import AuditEntry, Certificate
from routes.secrets import REDACTED
from routes.services import config_version
from routes.snapshot import build_table
from tests.support.certificates import ec_key_pem, encrypted, expired, issued
from tests.support.users import api_client_of

pytestmark = pytest.mark.django_db
CA = trustme.CA()
API = issued(CA, "api.example.com", "*.api.example.com", rsa=True)
WWW = issued(CA, "www.example.com")


@pytest.fixture
def operator() -> APIClient:
    return api_client_of("operator")


@pytest.fixture
def created(operator) -> dict:
    response = operator.post("/api/certificates/", {"name": "api", "certificate": API.chain, "key": API.key},
                             format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_created_certificate_reads_back_by_id_and_name_with_its_derived_fields(operator, created):
    assert created["hosts"] == ["api.example.com", "*.api.example.com"]
    assert created["default"] is False
    assert created["subject"] and created["issuer"] and created["not_before"] and created["not_after"]
    assert len(created["fingerprint_sha256"]) == 64 and created["expires_in_days"] > 300
    assert operator.get("/api/certificates/api/").json() == operator.get(f"/api/certificates/{created['id']}/").json()
    assert [row["name"] for row in operator.get("/api/certificates/").json()["results"]] == ["api"]


def test_the_key_is_in_no_answer_and_in_no_audit_row(operator, created):
    texts = [json.dumps(created), operator.get("/api/certificates/").content.decode(),
             operator.get("/api/certificates/api/").content.decode(),
             operator.patch("/api/certificates/api/", {"key": API.key}, format="json").content.decode(),
             json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))]
    key_body = API.key.splitlines()[1]
    assert all(key_body not in text and "PRIVATE KEY" not in text for text in texts)
    assert "key" not in created
    assert AuditEntry.objects.filter(object_type="certificate", action="create").get().changes["key"] == \
        [None, REDACTED]


def test_an_update_without_the_key_keeps_the_stored_key(operator, created):
    response = operator.put("/api/certificates/api/", {"name": "api", "certificate": API.chain,
                                                       "hosts": ["api.example.com"]}, format="json")
    assert response.status_code == 200, response.json()
    assert operator.patch("/api/certificates/api/", {"key": REDACTED, "default": True},
                          format="json").status_code == 200
    row = Certificate.objects.get()
    assert (row.key, row.hosts, row.default) == (API.key, ["api.example.com"], True)


def test_a_new_certificate_under_a_kept_key_must_match_it(operator, created):
    response = operator.patch("/api/certificates/api/", {"certificate": WWW.chain, "hosts": []}, format="json")
    assert response.status_code == 400
    assert "The stored key does not match" in response.json()["errors"]["certificate"][0]


def test_a_renewal_with_its_key_replaces_both(operator, created):
    renewed = issued(CA, "api.example.com")
    response = operator.patch("/api/certificates/api/", {"certificate": renewed.chain, "key": renewed.key,
                                                         "hosts": []}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["fingerprint_sha256"] != created["fingerprint_sha256"]
    assert Certificate.objects.get().key == renewed.key


@pytest.mark.parametrize(("key", "message"), [
    (ec_key_pem(), "The key does not match the certificate"),
    ("garbage", "Is not a PEM private key"),
    (encrypted(API.key), "The key is encrypted"),
    (REDACTED, "keeps a stored key"),
], ids=["mismatch", "garbage", "encrypted", "marker"])
def test_a_bad_key_is_refused_at_key(operator, key, message):
    response = operator.post("/api/certificates/", {"name": "api", "certificate": API.chain, "key": key},
                             format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["key"] and message in response.json()["errors"]["key"][0]
    assert not Certificate.objects.exists()


def test_a_chain_that_is_not_pem_is_refused_at_certificate(operator):
    response = operator.post("/api/certificates/", {"name": "x", "certificate": "nope", "key": API.key},
                             format="json")
    assert response.status_code == 400 and "certificate" in response.json()["errors"]


def test_unknown_keys_are_refused_by_name(operator):
    response = operator.post("/api/certificates/", {"name": "api", "certificate": API.chain, "key": API.key,
                                                    "hostnames": ["api.example.com"]}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["hostnames"]


def test_a_host_another_certificate_serves_is_refused_naming_it(operator, created):
    other = issued(CA, "api.example.com", "other.example.com")
    response = operator.post("/api/certificates/", {"name": "other", "certificate": other.chain, "key": other.key},
                             format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "hosts[0]": ["api.example.com is already served by certificate 'api': a host has one certificate."]}


def test_a_second_default_is_refused(operator):
    for name, pair in (("api", API), ("www", WWW)):
        response = operator.post("/api/certificates/", {"name": name, "certificate": pair.chain, "key": pair.key,
                                                        "default": True}, format="json")
    assert response.status_code == 400
    assert "Certificate 'api' is already the default" in response.json()["errors"]["default"][0]


def test_an_expired_certificate_is_accepted_and_shows_negative_days(operator):
    old = expired("old.example.com")
    response = operator.post("/api/certificates/", {"name": "old", "certificate": old.chain, "key": old.key},
                             format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["expires_in_days"] < 0


def test_each_change_moves_the_version_and_reaches_the_table(operator, created):
    version = config_version().version
    spec, = build_table().certificates
    row = Certificate.objects.get()
    assert (spec.name, spec.hosts, spec.chain_pem, spec.key_pem, spec.default) == \
        ("api", ("api.example.com", "*.api.example.com"), API.chain, API.key, False)
    assert spec.not_after == row.not_after.timestamp() and spec.fingerprint == created["fingerprint_sha256"]
    assert operator.patch("/api/certificates/api/", {"hosts": ["api.example.com"]}, format="json").status_code == 200
    assert config_version().version == version + 1
    assert build_table().certificates[0].hosts == ("api.example.com",)
    assert operator.delete("/api/certificates/api/").status_code == 204
    assert config_version().version == version + 2 and build_table().certificates == ()
    assert AuditEntry.objects.filter(object_type="certificate", action="delete").exists()


def test_a_viewer_reads_but_cannot_write(created):
    viewer = api_client_of("viewer")
    assert viewer.get("/api/certificates/").status_code == 200
    assert viewer.delete("/api/certificates/api/").status_code == 403
    assert viewer.post("/api/certificates/", {"name": "x"}, format="json").status_code == 403
