"""The `consumers` section of a configuration document: dump, apply, prune, API keys by reference, errors by path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from routes import services
from routes.config_files import References, apply_config, diff_config, dump_config
from routes.consumers import services as consumer_services
from routes.consumers.models import ApiKey, Consumer
from routes.models import AuditEntry

pytestmark = pytest.mark.django_db

KEY = "rk_" + "A1b2C3d4" * 4  # 32 characters after the prefix, as Rusta issues them
OTHER_KEY = "rk_" + "Zz9-Yy8_" * 4
LOCAL = References(env={"BILLING_KEY": KEY, "OTHER_KEY": OTHER_KEY}, base_dir=Path("/nonexistent"))


def apply(document, **options):
    return apply_config(document, actor=None, source="test", refs=LOCAL, **options)


def errors_of(document, **options):
    with pytest.raises(services.ConfigError) as caught:
        apply(document, **options)
    return caught.value.errors


def state():
    """Every consumer as stored (keys by digest and state), the version and the audit trail."""
    consumers = [(c.name, c.enabled, c.tags, [s.subject for s in c.subjects.all()],
                  sorted((k.digest, k.revoked_at is None) for k in c.api_keys.all())) for c in Consumer.objects.all()]
    return consumers, services.config_version().version, list(AuditEntry.objects.values_list("id", flat=True))


def keys_of(name: str) -> dict[str, str]:
    """The consumer's keys: {prefix: state}."""
    now = timezone.now()
    return {key.prefix: key.state(now) for key in ApiKey.objects.filter(consumer__name=name)}


@pytest.fixture
def stored():
    """billing (tagged, two subjects, one issued key) and ops (disabled)."""
    billing = consumer_services.save_consumer({"name": "billing", "tags": ["partner"], "jwt_subjects": ["b-1", "b-2"]},
                                              actor=None, source="test")
    consumer_services.save_consumer({"name": "ops", "enabled": False}, actor=None, source="test")
    return consumer_services.issue_key(billing, actor=None, source="test").key


# --- dump ----------------------------------------------------------------------------------------------------

def test_a_dump_lists_consumers_by_name_without_their_keys(stored):
    assert dump_config()["consumers"] == {
        "billing": {"enabled": True, "tags": ["partner"], "jwt_subjects": ["b-1", "b-2"]},
        "ops": {"enabled": False, "tags": [], "jwt_subjects": []},
    }
    assert stored not in json.dumps(dump_config(include_secrets=True))


def test_applying_a_dump_with_prune_changes_nothing_and_keeps_every_key(stored):
    before = state()
    result = apply(json.loads(json.dumps(dump_config())), prune=True)
    assert not result.changed
    assert result.consumers_unchanged == ["billing", "ops"]
    assert state() == before


# --- apply ---------------------------------------------------------------------------------------------------

def test_apply_creates_and_updates_consumers_in_one_audited_change(stored):
    version = services.config_version().version
    result = apply({"consumers": {"billing": {"tags": ["partner", "eu"], "jwt_subjects": ["b-1", "b-2"]},
                                  "search": {"jwt_subjects": ["s-1"]}}})
    assert (result.consumers_created, result.consumers_updated) == (["search"], ["billing"])
    assert Consumer.objects.get(name="billing").tags == ["partner", "eu"]
    assert [s.subject for s in Consumer.objects.get(name="search").subjects.all()] == ["s-1"]
    assert services.config_version().version == version + 1  # the gateways reload their consumer directory
    entry = AuditEntry.objects.first()
    assert entry is not None and entry.action == "apply"
    assert entry.changes == {"consumers.billing.tags": [["partner"], ["partner", "eu"]],
                             "consumers.search": [None, {"enabled": True, "tags": [], "jwt_subjects": ["s-1"]}]}


def test_a_field_left_out_takes_its_default(stored):
    apply({"consumers": {"ops": {}, "billing": {"jwt_subjects": ["b-1"]}}})
    assert Consumer.objects.get(name="ops").enabled is True
    assert Consumer.objects.get(name="billing").tags == []


def test_consumers_the_document_lacks_are_kept_without_prune_and_deleted_with_it(stored):
    apply({"consumers": {"billing": {"tags": ["partner"], "jwt_subjects": ["b-1", "b-2"]}}})
    assert Consumer.objects.filter(name="ops").exists()
    result = apply({"consumers": {"billing": {"tags": ["partner"], "jwt_subjects": ["b-1", "b-2"]}}}, prune=True)
    assert result.consumers_deleted == ["ops"]
    assert list(Consumer.objects.values_list("name", flat=True)) == ["billing"]


def test_a_prune_without_a_consumers_section_keeps_every_consumer(stored):
    apply({"routes": {}}, prune=True)
    assert Consumer.objects.count() == 2
    assert len(keys_of("billing")) == 1


def test_a_subject_moves_between_consumers_in_one_apply(stored):
    result = apply({"consumers": {"ops": {"jwt_subjects": ["b-2"]},
                                  "billing": {"tags": ["partner"], "jwt_subjects": ["b-1"]}}})
    assert sorted(result.consumers_updated) == ["billing", "ops"]
    assert [s.subject for s in Consumer.objects.get(name="ops").subjects.all()] == ["b-2"]


# --- API keys ------------------------------------------------------------------------------------------------

def test_listed_keys_become_the_consumers_keys_and_unlisted_ones_are_revoked(stored):
    issued = ApiKey.objects.get(consumer__name="billing").prefix
    apply({"consumers": {"billing": {"tags": ["partner"], "jwt_subjects": ["b-1", "b-2"],
                                     "api_keys": [{"key": "${env:BILLING_KEY}"}]}}})
    assert keys_of("billing") == {issued: "revoked", KEY[:11]: "active"}  # revoked keys stay listed
    assert ApiKey.objects.get(prefix=KEY[:11]).digest == consumer_services.stored_digest(KEY)


def test_a_listed_key_that_is_stored_is_left_as_it_is(stored):
    document = {"consumers": {"billing": {"tags": ["partner"], "jwt_subjects": ["b-1", "b-2"],
                                         "api_keys": [{"key": stored}, {"key": "${env:BILLING_KEY}"}]}}}
    apply(document)
    before = state()
    assert not apply(document).changed
    assert state() == before


def test_without_api_keys_the_keys_are_not_managed(stored):
    apply({"consumers": {"billing": {"tags": []}}})
    assert list(keys_of("billing").values()) == ["active"]


def test_changes_name_keys_by_prefix_and_never_show_one(stored):
    result = diff_config({"consumers": {"billing": {"tags": ["partner"], "jwt_subjects": ["b-1", "b-2"],
                                                    "api_keys": [{"key": KEY}]}}}, refs=LOCAL)
    [change] = result.changes
    assert (change.path, change.old, change.new) == ("consumers.billing.api_keys", [f"{stored[:11]}…"],
                                                     [f"{KEY[:11]}…"])
    assert KEY not in json.dumps(result.as_dict()) and stored not in json.dumps(result.as_dict())


def test_a_new_consumer_with_keys_is_shown_with_their_prefixes(stored):
    result = apply({"consumers": {"search": {"api_keys": [{"key": OTHER_KEY}]}}})
    assert result.changes[0].new == {"enabled": True, "tags": [], "jwt_subjects": [],
                                     "api_keys": [f"{OTHER_KEY[:11]}…"]}
    entry = AuditEntry.objects.first()
    assert entry is not None and OTHER_KEY not in json.dumps(entry.changes)


def test_a_revoked_key_is_never_brought_back(stored):
    consumer_services.revoke_key(ApiKey.objects.get(consumer__name="billing"), actor=None, source="test")
    errors = errors_of({"consumers": {"billing": {"api_keys": [{"key": stored}]}}})
    assert list(errors) == ["consumers.billing.api_keys[0].key"]
    assert "is revoked" in errors["consumers.billing.api_keys[0].key"][0]


def test_a_key_of_another_consumer_is_refused(stored):
    errors = errors_of({"consumers": {"ops": {"enabled": False, "api_keys": [{"key": stored}]}}})
    assert "is a key of consumer 'billing'" in errors["consumers.ops.api_keys[0].key"][0]


def test_a_key_listed_twice_is_refused(stored):
    errors = errors_of({"consumers": {"ops": {"api_keys": [{"key": KEY}]}, "search": {"api_keys": [{"key": KEY}]}}})
    assert errors == {"consumers.search.api_keys[0].key": ["The same key is listed at consumers.ops.api_keys[0].key."]}


@pytest.mark.parametrize("key", ["rk_short", "A1b2C3d4" * 5, "rk_" + "a" * 31 + " ", "rk_" + "a" * 200, 42])
def test_a_key_not_shaped_like_rustas_is_refused_without_repeating_it(stored, key):
    before = state()
    errors = errors_of({"consumers": {"search": {"api_keys": [{"key": key}]}}})
    [message] = errors["consumers.search.api_keys[0].key"]
    assert "at least 32" in message and str(key) not in message
    assert state() == before


def test_an_unset_reference_is_the_keys_one_error(stored):
    errors = errors_of({"consumers": {"search": {"api_keys": [{"key": "${env:NOT_SET}"}]}}})
    assert errors == {"consumers.search.api_keys[0].key": ["The environment variable NOT_SET is not set."]}


# --- errors by path ------------------------------------------------------------------------------------------

def test_every_error_is_named_by_its_path_and_nothing_changes(stored):
    before = state()
    errors = errors_of({"consumers": {
        "billing": {"colour": "red", "tags": ["ok", " bad"], "api_keys": [{"key": KEY, "ttl_s": 60}]},
        "bad name": {},
        "ops": {"enabled": "yes", "name": "other", "jwt_subjects": ["b-1"]},
        "search": [],
    }})
    assert set(errors) == {"consumers.billing.colour", "consumers.billing.tags[1]",
                           "consumers.billing.api_keys[0].ttl_s", 'consumers["bad name"]', "consumers.ops.enabled",
                           "consumers.ops.name", "consumers.search"}
    assert state() == before


def test_a_subject_of_a_consumer_the_document_keeps_is_refused(stored):
    errors = errors_of({"consumers": {"search": {"jwt_subjects": ["b-1"]}}})
    assert errors == {"consumers.search.jwt_subjects[0]": [
        "'b-1' is already a subject of consumer 'billing', which this document leaves as it is."]}


def test_a_subject_given_to_two_consumers_of_the_document_is_refused(stored):
    errors = errors_of({"consumers": {"a": {"jwt_subjects": ["x"]}, "b": {"jwt_subjects": ["x"]}}})
    assert errors == {"consumers.b.jwt_subjects[0]": ["'x' is also a subject of consumer 'a' in this document."]}


def test_a_consumers_section_that_is_no_object_is_refused(stored):
    assert errors_of({"consumers": ["billing"]}) == {"consumers": [
        'Must be an object of consumers by name, like {"billing": {"tags": ["partner"]}}.']}
