"""The `certificates` section of a configuration document: dumped with the key `<redacted>`, applied keeping the
stored key for the marker and taking a new PEM (by `${file:...}`) otherwise, errors by path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme

from routes import services
from routes.certificates.services import save_certificate
from routes.config_files import References, apply_config, dump_config
from routes.models import AuditEntry, Certificate
from routes.secrets import REDACTED
from tests.support.certificates import ec_key_pem, issued

pytestmark = pytest.mark.django_db
CA = trustme.CA()
API = issued(CA, "api.example.com")
WWW = issued(CA, "www.example.com")


def apply(document, tmp_path: Path | None = None, **options):
    refs = References(env={}, base_dir=tmp_path or Path("/nonexistent"))
    return apply_config(document, actor=None, source="test", refs=refs, **options)


def errors_of(document, **options):
    with pytest.raises(services.ConfigError) as caught:
        apply(document, **options)
    return caught.value.errors


@pytest.fixture
def stored() -> Certificate:
    return save_certificate({"name": "api", "certificate": API.chain, "key": API.key, "default": True}, actor=None,
                            source="test")


def test_a_dump_lists_each_certificate_with_its_key_redacted(stored):
    dumped = dump_config()
    assert dumped["certificates"] == {"api": {"hosts": ["api.example.com"], "default": True,
                                              "certificate": API.chain, "key": REDACTED}}
    assert "PRIVATE KEY" not in json.dumps(dumped)
    assert dump_config(include_secrets=True)["certificates"]["api"]["key"] == API.key


def test_applying_a_dump_keeps_the_stored_key_and_changes_nothing(stored):
    version = services.config_version().version
    result = apply(dump_config())
    assert not result.changed and result.certificates_unchanged == ["api"]
    assert Certificate.objects.get().key == API.key and services.config_version().version == version


def test_a_new_certificate_by_file_reference_is_created_and_audited_without_its_key(tmp_path):
    (tmp_path / "www.pem").write_text(WWW.chain)
    (tmp_path / "www.key").write_text(WWW.key)
    result = apply({"certificates": {"www": {"certificate": "${file:www.pem}", "key": "${file:www.key}"}}},
                   tmp_path)
    assert result.applied and result.certificates_created == ["www"]
    row = Certificate.objects.get()
    assert (row.hosts, row.key) == (["www.example.com"], WWW.key)
    assert "PRIVATE KEY" not in json.dumps(AuditEntry.objects.get(action="apply").changes)


def test_a_renewal_with_a_new_key_is_a_secret_change(stored):
    renewed = issued(CA, "api.example.com")
    result = apply({"certificates": {"api": {"certificate": renewed.chain, "key": renewed.key, "default": True}}})
    assert result.certificates_updated == ["api"]
    assert {"path": "certificates.api.key", "op": "change", "secret": True} in [c.as_dict() for c in result.changes]
    assert Certificate.objects.get().key == renewed.key


def test_a_new_certificate_with_the_marker_or_a_wrong_key_is_refused_by_path(stored):
    errors = errors_of({"certificates": {"www": {"certificate": WWW.chain, "key": REDACTED},
                                         "api": {"certificate": API.chain, "key": ec_key_pem()}}})
    assert "keeps a stored key" in errors["certificates.www.key"][0]
    assert "does not match" in errors["certificates.api.key"][0]


def test_a_host_or_default_claimed_twice_in_the_result_is_refused(stored):
    other = issued(CA, "api.example.com", "other.example.com")
    errors = errors_of({"certificates": {"other": {"certificate": other.chain, "key": other.key,
                                                   "default": True}}})
    assert set(errors) == {"certificates.other.hosts[0]", "certificates.other.default"}


def test_the_default_may_move_between_certificates_in_one_apply(stored):
    apply({"certificates": {"api": {"certificate": API.chain, "default": False},
                            "www": {"certificate": WWW.chain, "key": WWW.key, "default": True}}})
    assert dict(Certificate.objects.values_list("name", "default")) == {"api": False, "www": True}


def test_prune_deletes_unlisted_certificates_only_when_the_section_is_there(stored):
    assert not apply({"routes": {}}, prune=True).certificates_deleted
    assert apply({"certificates": {}}, prune=True).certificates_deleted == ["api"]
    assert not Certificate.objects.exists()


def test_an_unknown_key_is_refused_by_path():
    errors = errors_of({"certificates": {"api": {"certificate": API.chain, "key": API.key, "hostnames": []}}})
    assert list(errors) == ["certificates.api.hostnames"]
