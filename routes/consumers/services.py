"""Every write of consumers and their API keys: validated, atomic, audited, and announced by a version bump.

The admin and the API call these functions. An API key is returned in the clear once, by `issue_key` and
`rotate_key` (IssuedKey.key); only its SHA-256 and first characters are stored, and no read ever shows more.
Audit rows name keys by their prefix.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from protocols.auth.consumers import API_KEY_PREFIX, key_digest
from routes.consumers.models import API_KEY_DISPLAY_CHARS, ApiKey, Consumer, ConsumerSubject
from routes.models import AuditEntry
from routes.services import Actor, ConfigError, bump_version, diff, record_audit

Errors = dict[str, list[str]]

# A header value (X-Consumer-Name) and a rate-limit key part: no spaces, no separators.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,99}$")
TAG = re.compile(r"^[^,\s][^,]{0,49}$")
MAX_TAGS = 20
MAX_SUBJECTS = 100
MAX_SUBJECT_LENGTH = 255
DEFAULT_OVERLAP_S = 24 * 3600  # a rotated key keeps working this long, so clients can move to the new one
MAX_OVERLAP_S = 30 * 24 * 3600
MAX_TTL_S = 10 * 365 * 24 * 3600
KEY_BYTES = 24  # 192 random bits: 32 URL-safe characters after the prefix
DOCUMENT_FIELDS = ("name", "enabled", "tags", "jwt_subjects")
READ_ONLY_FIELDS = ("id", "created_at", "updated_at", "keys")  # shown by reads; ignored when sent back


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: the row, and the key itself, which is never available again."""

    row: ApiKey
    key: str


# --- Reading ---------------------------------------------------------------------------------------------

def key_document(key: ApiKey, now: datetime | None = None) -> dict[str, Any]:
    """An API key as reads show it: never the key, never its digest."""
    return {"id": key.pk, "prefix": key.prefix, "created_at": key.created_at, "expires_at": key.expires_at,
            "revoked_at": key.revoked_at, "state": key.state(now or timezone.now())}


def consumer_document(consumer: Consumer) -> dict[str, Any]:
    """The consumer as the API shows it (and takes back: the read-only fields are ignored)."""
    now = timezone.now()
    return {
        "id": consumer.pk,
        "name": consumer.name,
        "enabled": consumer.enabled,
        "tags": list(consumer.tags),
        "jwt_subjects": [s.subject for s in consumer.subjects.all()],
        "created_at": consumer.created_at,
        "updated_at": consumer.updated_at,
        "keys": [key_document(key, now) for key in consumer.api_keys.all()],
    }


def _audited(consumer: Consumer) -> dict[str, Any]:
    """What the audit trail compares: the document's own fields."""
    return {"name": consumer.name, "enabled": consumer.enabled, "tags": list(consumer.tags),
            "jwt_subjects": [s.subject for s in consumer.subjects.all()]}


# --- Consumers -------------------------------------------------------------------------------------------

def prepare_consumer(data: Any, *, consumer: Consumer | None = None, partial: bool = False,
                     subjects_by_others: bool = True) -> dict[str, Any]:
    """The document `save_consumer` would store, without saving; raises ConfigError naming each field.
    `subjects_by_others=False` leaves out the check that no other stored consumer has a subject: a configuration
    apply, which may move a subject between consumers in one change, checks the result itself."""
    if not isinstance(data, dict):
        raise ConfigError({"": ['A consumer must be a JSON object like {"name": "billing"}.']})
    errors: Errors = {}
    for key in data:
        if key not in DOCUMENT_FIELDS and key not in READ_ONLY_FIELDS:
            errors.setdefault(str(key), []).append(
                f"Unknown key; a consumer has {', '.join(DOCUMENT_FIELDS)}.")
    base = _audited(consumer) if consumer is not None and partial else {"enabled": True, "tags": [],
                                                                        "jwt_subjects": []}
    doc = {**base, **{key: data[key] for key in DOCUMENT_FIELDS if key in data}}
    _check_name(doc.get("name"), consumer, errors)
    if not isinstance(doc.get("enabled"), bool):
        errors.setdefault("enabled", []).append("Must be true or false.")
    doc["tags"] = _strings(doc.get("tags"), "tags", MAX_TAGS, errors, _tag_error)
    doc["jwt_subjects"] = _strings(doc.get("jwt_subjects"), "jwt_subjects", MAX_SUBJECTS, errors, _subject_error)
    if "jwt_subjects" not in errors and subjects_by_others:
        _check_subjects_free(doc["jwt_subjects"], consumer, errors)
    if errors:
        raise ConfigError(errors)
    return doc


def _check_name(name: Any, consumer: Consumer | None, errors: Errors) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        errors.setdefault("name", []).append(
            "Use 1 to 100 letters, digits or '_.@:-', starting with a letter or digit.")
        return
    clash = Consumer.objects.filter(name=name)
    if consumer is not None:
        clash = clash.exclude(pk=consumer.pk)
    if clash.exists():
        errors.setdefault("name", []).append(f"A consumer named '{name}' already exists.")


def _tag_error(value: str) -> str | None:
    return None if TAG.match(value) else "A tag is 1 to 50 characters without commas, not starting with a space."


def _subject_error(value: str) -> str | None:
    if not value or len(value) > MAX_SUBJECT_LENGTH:
        return f"A subject is 1 to {MAX_SUBJECT_LENGTH} characters."
    return None


def _strings(value: Any, field: str, most: int, errors: Errors, problem: Any) -> list[str]:
    """A list of distinct strings (order kept, repeats dropped), each judged by `problem`."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.setdefault(field, []).append('Must be a list of strings, like ["a", "b"].')
        return []
    if len(value) > most:
        errors.setdefault(field, []).append(f"At most {most}.")
    for index, item in enumerate(value):
        message = "Must be a string." if not isinstance(item, str) else problem(item)
        if message:
            errors.setdefault(f"{field}[{index}]", []).append(message)
    return list(dict.fromkeys(item for item in value if isinstance(item, str)))


def _check_subjects_free(subjects: list[str], consumer: Consumer | None, errors: Errors) -> None:
    taken = ConsumerSubject.objects.filter(subject__in=subjects).select_related("consumer")
    if consumer is not None:
        taken = taken.exclude(consumer=consumer)
    for row in taken:
        index = subjects.index(row.subject)
        errors.setdefault(f"jwt_subjects[{index}]", []).append(
            f"'{row.subject}' is already a subject of consumer '{row.consumer.name}'.")


def save_consumer(data: Any, *, actor: Actor, source: str, consumer: Consumer | None = None,
                  partial: bool = False) -> Consumer:
    """Create (consumer=None) or change a consumer; raises ConfigError and saves nothing if invalid. With
    `partial` only the fields sent change."""
    with transaction.atomic():
        if consumer is not None:
            consumer = Consumer.objects.select_for_update().get(pk=consumer.pk)
        before = _audited(consumer) if consumer is not None else None
        doc = prepare_consumer(data, consumer=consumer, partial=partial)
        target = consumer or Consumer()
        write_consumer(target, doc)
        record_audit(actor, source, AuditEntry.Action.UPDATE if consumer else AuditEntry.Action.CREATE,
                     "consumer", target.pk, target.name, diff(before, _audited(target)))
        bump_version()
    return target


def write_consumer(target: Consumer, doc: dict[str, Any]) -> None:
    """Store a document from `prepare_consumer` (no audit, no version bump: the caller writes them)."""
    target.name, target.enabled, target.tags = doc["name"], doc["enabled"], doc["tags"]
    target.save()
    _write_subjects(target, doc["jwt_subjects"])


def _write_subjects(consumer: Consumer, subjects: list[str]) -> None:
    ConsumerSubject.objects.filter(consumer=consumer).exclude(subject__in=subjects).delete()
    have = set(ConsumerSubject.objects.filter(consumer=consumer).values_list("subject", flat=True))
    ConsumerSubject.objects.bulk_create(
        [ConsumerSubject(consumer=consumer, subject=subject) for subject in subjects if subject not in have])
    getattr(consumer, "_prefetched_objects_cache", {}).pop("subjects", None)


def delete_consumer(consumer: Consumer, *, actor: Actor, source: str) -> None:
    """Delete a consumer with its subjects and keys (every key stops working at the gateways' next reload)."""
    with transaction.atomic():
        before = _audited(consumer)
        pk, name = consumer.pk, consumer.name
        keys = list(consumer.api_keys.values_list("prefix", flat=True))
        consumer.delete()
        record_audit(actor, source, AuditEntry.Action.DELETE, "consumer", pk, name,
                     {**diff(before, None), "keys": [keys, None]})
        bump_version()


# --- API keys --------------------------------------------------------------------------------------------

def _seconds(value: Any, field: str, most: int, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise ConfigError({field: [f"Must be a whole number of seconds from 0 to {most}."]})
    return value


def _new_key(consumer: Consumer, expires_at: datetime | None) -> IssuedKey:
    key = API_KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    return IssuedKey(store_key(consumer, key, expires_at), key)


def stored_digest(key: str) -> str:
    """What an ApiKey row keeps of a key (hex SHA-256)."""
    return key_digest(key.encode()).hex()


def store_key(consumer: Consumer, key: str, expires_at: datetime | None = None) -> ApiKey:
    """Keep a key's digest and prefix for the consumer (no audit, no version bump: the caller writes them)."""
    return ApiKey.objects.create(consumer=consumer, prefix=key[:API_KEY_DISPLAY_CHARS], digest=stored_digest(key),
                                 expires_at=expires_at)


def _key_repr(consumer: Consumer, key: ApiKey) -> str:
    return f"{consumer.name} {key.prefix}"


def issue_key(consumer: Consumer, *, actor: Actor, source: str, ttl_s: Any = None) -> IssuedKey:
    """A new API key for the consumer, working from the gateways' next reload until revoked (or for `ttl_s`
    seconds). The returned IssuedKey.key is the only time the key is seen."""
    ttl = _seconds(ttl_s, "ttl_s", MAX_TTL_S, None)
    with transaction.atomic():
        consumer = Consumer.objects.select_for_update().get(pk=consumer.pk)
        expires_at = timezone.now() + timedelta(seconds=ttl) if ttl is not None else None
        issued = _new_key(consumer, expires_at)
        record_audit(actor, source, AuditEntry.Action.CREATE, "api_key", issued.row.pk,
                     _key_repr(consumer, issued.row), {"prefix": [None, issued.row.prefix],
                                                       "expires_at": [None, _iso(expires_at)]})
        bump_version()
    return issued


def rotate_key(key: ApiKey, *, actor: Actor, source: str, overlap_s: Any = None) -> IssuedKey:
    """A new key in place of `key`, which keeps working for `overlap_s` seconds (default a day; 0: it stops at
    the gateways' next reload) so that clients can move over. A revoked or expired key cannot be rotated."""
    overlap = _seconds(overlap_s, "overlap_s", MAX_OVERLAP_S, DEFAULT_OVERLAP_S)
    assert overlap is not None
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().select_related("consumer").get(pk=key.pk)
        now = timezone.now()
        state = key.state(now)
        if state in ("revoked", "expired"):
            raise ConfigError({"": [f"Key {key.prefix}… is {state}; issue a new key instead."]})
        old_expiry = key.expires_at
        ends = now + timedelta(seconds=overlap)
        if old_expiry is None or ends < old_expiry:  # rotating never lengthens a key's life
            key.expires_at = ends
            key.save(update_fields=["expires_at"])
        issued = _new_key(key.consumer, None)
        record_audit(actor, source, AuditEntry.Action.UPDATE, "api_key", key.pk, _key_repr(key.consumer, key),
                     {"expires_at": [_iso(old_expiry), _iso(key.expires_at)],
                      "rotated_to": [None, issued.row.prefix]})
        record_audit(actor, source, AuditEntry.Action.CREATE, "api_key", issued.row.pk,
                     _key_repr(key.consumer, issued.row),
                     {"prefix": [None, issued.row.prefix], "rotated_from": [None, key.prefix]})
        bump_version()
    return issued


def revoke_key(key: ApiKey, *, actor: Actor, source: str) -> ApiKey:
    """End a key now: the gateways refuse it (401 invalid_api_key) from their next reload. Revoking a revoked
    key changes nothing."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().select_related("consumer").get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            record_audit(actor, source, AuditEntry.Action.UPDATE, "api_key", key.pk, _key_repr(key.consumer, key),
                         {"revoked_at": [None, _iso(key.revoked_at)]})
            bump_version()
    return key


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
