"""routes.consumers.services: consumers and their API keys are validated, audited, announced to the gateways, and
keys are never stored or shown after they are issued; routes.consumers.directory ships them to the data plane."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from protocols.auth.consumers import DIRECTORY_SETTING
from routes import snapshot
from routes.consumers import services
from routes.consumers.models import ApiKey, Consumer
from routes.models import AuditEntry
from routes.services import ConfigError, config_version

pytestmark = pytest.mark.django_db


def make(name: str = "billing", **fields) -> Consumer:
    return services.save_consumer({"name": name, **fields}, actor=None, source="api")


def errors_of(data, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ConfigError) as refused:
        services.save_consumer(data, actor=None, source="api", **kwargs)
    return refused.value.errors


# --- Consumers ---------------------------------------------------------------------------------------------------

def test_a_consumer_is_saved_with_its_subjects_and_tags():
    consumer = make(tags=["partner", "partner", "eu"], jwt_subjects=["alice", "svc-billing"])
    document = services.consumer_document(consumer)
    assert (document["tags"], document["jwt_subjects"], document["enabled"]) == (["partner", "eu"],
                                                                                 ["alice", "svc-billing"], True)


def test_creating_a_consumer_is_audited_and_bumps_the_version():
    before = config_version().version
    consumer = make(jwt_subjects=["alice"])
    entry = AuditEntry.objects.get(object_type="consumer")
    assert (entry.action, entry.object_id, entry.changes["jwt_subjects"]) == ("create", str(consumer.pk),
                                                                              [None, ["alice"]])
    assert config_version().version == before + 1


def test_a_name_that_cannot_be_a_header_value_is_refused():
    assert "name" in errors_of({"name": "two words"})


def test_a_second_consumer_of_the_same_name_is_refused():
    make()
    assert errors_of({"name": "billing"})["name"] == ["A consumer named 'billing' already exists."]


def test_a_subject_of_another_consumer_is_refused_by_its_path():
    make(jwt_subjects=["alice"])
    errors = errors_of({"name": "shipping", "jwt_subjects": ["bob", "alice"]})
    assert errors == {"jwt_subjects[1]": ["'alice' is already a subject of consumer 'billing'."]}


def test_an_unknown_key_is_refused_by_name():
    assert "colour" in errors_of({"name": "billing", "colour": "blue"})


def test_the_read_only_fields_of_a_document_read_back_are_ignored():
    consumer = make(jwt_subjects=["alice"])
    document = services.consumer_document(consumer)
    services.save_consumer({**document, "enabled": False}, actor=None, source="api", consumer=consumer)
    consumer.refresh_from_db()
    assert consumer.enabled is False


def test_a_partial_change_keeps_the_fields_not_sent():
    consumer = make(jwt_subjects=["alice"], tags=["eu"])
    services.save_consumer({"enabled": False}, actor=None, source="api", consumer=consumer, partial=True)
    assert services.consumer_document(consumer)["jwt_subjects"] == ["alice"]


def test_deleting_a_consumer_takes_its_keys_and_is_audited():
    consumer = make()
    issued = services.issue_key(consumer, actor=None, source="api")
    services.delete_consumer(consumer, actor=None, source="api")
    assert not ApiKey.objects.exists()
    entry = AuditEntry.objects.get(object_type="consumer", action="delete")
    assert entry.changes["keys"] == [[issued.row.prefix], None]


# --- Keys --------------------------------------------------------------------------------------------------------

def test_an_issued_key_is_stored_as_its_hash_and_prefix_only():
    issued = services.issue_key(make(), actor=None, source="api")
    row = ApiKey.objects.get()
    assert issued.key.startswith("rk_") and len(issued.key) == 35
    assert row.digest == hashlib.sha256(issued.key.encode()).hexdigest()
    assert row.prefix == issued.key[:11]
    assert issued.key not in str(list(ApiKey.objects.values()))


def test_two_keys_are_never_the_same():
    consumer = make()
    assert services.issue_key(consumer, actor=None, source="api").key != \
        services.issue_key(consumer, actor=None, source="api").key


def test_issuing_a_key_is_audited_by_prefix_and_never_by_key():
    issued = services.issue_key(make(), actor=None, source="api")
    entry = AuditEntry.objects.get(object_type="api_key")
    assert entry.changes["prefix"] == [None, issued.row.prefix]
    assert issued.key not in str(entry.changes) and issued.key not in entry.object_repr


def test_a_key_with_a_lifetime_expires():
    issued = services.issue_key(make(), actor=None, source="api", ttl_s=60)
    assert issued.row.expires_at is not None
    assert issued.row.state(timezone.now() + timedelta(seconds=61)) == "expired"


def test_a_negative_lifetime_is_refused():
    with pytest.raises(ConfigError) as refused:
        services.issue_key(make(), actor=None, source="api", ttl_s=-1)
    assert "ttl_s" in refused.value.errors


def test_rotating_a_key_issues_another_and_ends_the_old_one_after_the_overlap():
    old = services.issue_key(make(), actor=None, source="api").row
    started = timezone.now()
    new = services.rotate_key(old, actor=None, source="api", overlap_s=3600)
    old.refresh_from_db()
    assert new.key.startswith("rk_") and new.row.pk != old.pk and new.row.expires_at is None
    assert old.state(started + timedelta(seconds=3599)) == "expiring"
    assert old.state(started + timedelta(seconds=3601)) == "expired"


def test_rotating_defaults_to_a_day_of_overlap():
    old = services.issue_key(make(), actor=None, source="api").row
    services.rotate_key(old, actor=None, source="api")
    old.refresh_from_db()
    assert timedelta(hours=23, minutes=59) < old.expires_at - timezone.now() <= timedelta(days=1)


def test_rotating_never_lengthens_a_keys_life():
    old = services.issue_key(make(), actor=None, source="api", ttl_s=60).row
    services.rotate_key(old, actor=None, source="api", overlap_s=3600)
    old.refresh_from_db()
    assert old.expires_at - timezone.now() <= timedelta(seconds=60)


def test_a_revoked_key_cannot_be_rotated():
    row = services.issue_key(make(), actor=None, source="api").row
    services.revoke_key(row, actor=None, source="api")
    with pytest.raises(ConfigError):
        services.rotate_key(row, actor=None, source="api")


def test_rotation_is_audited_on_both_keys():
    old = services.issue_key(make(), actor=None, source="api").row
    new = services.rotate_key(old, actor=None, source="api")
    rotated = AuditEntry.objects.get(object_type="api_key", object_id=str(old.pk), action="update")
    created = AuditEntry.objects.get(object_type="api_key", object_id=str(new.row.pk))
    assert rotated.changes["rotated_to"] == [None, new.row.prefix]
    assert created.changes["rotated_from"] == [None, old.prefix]


def test_revoking_ends_a_key_now_audits_it_and_bumps_the_version_once():
    row = services.issue_key(make(), actor=None, source="api").row
    before = config_version().version
    services.revoke_key(row, actor=None, source="api")
    services.revoke_key(row, actor=None, source="api")
    row.refresh_from_db()
    assert row.state(timezone.now()) == "revoked"
    assert AuditEntry.objects.filter(object_type="api_key", action="update").count() == 1
    assert config_version().version == before + 1


# --- The directory the data plane gets ---------------------------------------------------------------------------

def directory():
    return snapshot.build_table().settings[DIRECTORY_SETTING]


def test_the_table_carries_live_keys_by_hash_and_subjects():
    consumer = make(jwt_subjects=["alice"])
    issued = services.issue_key(consumer, actor=None, source="api")
    found = directory()
    assert found.keys[hashlib.sha256(issued.key.encode()).digest()].consumer.name == "billing"
    assert found.subjects["alice"].name == "billing"


def test_revoked_and_expired_keys_are_left_out_of_the_table():
    consumer = make()
    revoked = services.issue_key(consumer, actor=None, source="api").row
    services.revoke_key(revoked, actor=None, source="api")
    expired = services.issue_key(consumer, actor=None, source="api", ttl_s=0)
    assert expired.row.pk and len(directory().keys) == 0


def test_a_rotated_key_goes_to_the_table_with_its_expiry():
    old = services.issue_key(make(), actor=None, source="api")
    services.rotate_key(old.row, actor=None, source="api", overlap_s=600)
    grant = directory().keys[hashlib.sha256(old.key.encode()).digest()]
    assert grant.expires_at == pytest.approx(timezone.now().timestamp() + 600, abs=5)


def test_a_disabled_consumer_is_in_the_table_marked_disabled():
    make(jwt_subjects=["alice"], enabled=False)
    assert directory().subjects["alice"].enabled is False
