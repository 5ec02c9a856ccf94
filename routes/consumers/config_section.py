"""The `consumers` section of a configuration document: consumers by name, checked like the consumer API, and
their API keys as the document lists them, planned and then written as part of one configuration apply.

    consumers:
      billing:
        enabled: true
        tags: [partner]
        jwt_subjects: [billing-service]
        api_keys: [{key: "${env:BILLING_API_KEY}"}]

An entry is the whole consumer (a field left out takes its default), except `api_keys`. Listed, the consumer's
usable keys (active, or expiring after a rotation) become exactly those: a stored one stays as it is, a new one is
stored (its SHA-256 and prefix only), an unlisted one is revoked. Left out, the keys are not managed. Only digests
are stored, so a dump cannot list keys: it leaves `api_keys` out, and applying it keeps every key. Changes show a
key by its prefix (`rk_abcd1234…`), never whole. A revoked or expired key is never brought back by a document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from protocols.auth.consumers import API_KEY_PREFIX, MAX_KEY_BYTES
from routes.config_changes import FieldChange, field_changes, join_path
from routes.consumers.models import ApiKey, Consumer, ConsumerSubject
from routes.consumers.services import DOCUMENT_FIELDS, prepare_consumer, store_key, stored_digest, write_consumer
from routes.services import ConfigError

Errors = dict[str, list[str]]

SECTION = "consumers"
FIELDS = tuple(name for name in DOCUMENT_FIELDS if name != "name")  # the name is the entry's key
ENTRY_KEYS = (*FIELDS, "api_keys")
KEY_ENTRY_KEYS = ("key",)
MIN_KEY_CHARS = 32  # after `rk_`: a key Rusta issues has 32; fewer would be guessable
# The alphabet of the keys Rusta issues (secrets.token_urlsafe): header-safe, and no spaces to mistype.
_KEY = re.compile(rf"{API_KEY_PREFIX}[A-Za-z0-9_-]{{{MIN_KEY_CHARS},}}")
KEY_RULE = (f"An API key is '{API_KEY_PREFIX}' and at least {MIN_KEY_CHARS} letters, digits, '_' or '-' "
            f"({MAX_KEY_BYTES} characters at most), like `python -c \"import secrets; "
            f"print('{API_KEY_PREFIX}' + secrets.token_urlsafe(24))\"` prints.")
USABLE = ("active", "expiring")


def consumer_path(name: str) -> str:
    """Where a consumer is in the document and in a diff: `consumers.billing`."""
    return join_path(SECTION, name)


def shown_key(prefix: str) -> str:
    """A key as changes and messages name it: its stored prefix, never the key."""
    return f"{prefix}…"


# --- Dump ----------------------------------------------------------------------------------------------------

def _body(consumer: Consumer) -> dict[str, Any]:
    """A consumer as the document has it (no name: that is its key; no keys: only digests are stored)."""
    return {"enabled": consumer.enabled, "tags": list(consumer.tags),
            "jwt_subjects": [subject.subject for subject in consumer.subjects.all()]}


def dump_consumers() -> dict[str, dict[str, Any]]:
    """Every consumer by name, sorted."""
    return {consumer.name: _body(consumer)
            for consumer in Consumer.objects.order_by("name").prefetch_related("subjects")}


# --- Plan ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsumerEntry:
    """One consumer of the document, checked: its stored row (None: to create) and the keys it lists (None: its
    keys are not managed)."""

    name: str
    doc: dict[str, Any]
    stored: Consumer | None
    keys: list[str] | None


@dataclass(frozen=True)
class ConsumersPlan:
    """The checked `consumers` section: the entries in the document's order, and the consumers a prune deletes."""

    entries: list[ConsumerEntry]
    gone: list[Consumer]


def plan_consumers(section: Any, *, prune: bool, errors: Errors) -> ConsumersPlan | None:
    """The plan of a `consumers` section; its errors go into `errors` by path in the document."""
    if not isinstance(section, dict):
        errors[SECTION] = ['Must be an object of consumers by name, like {"billing": {"tags": ["partner"]}}.']
        return None
    stored = {consumer.name: consumer for consumer in
              Consumer.objects.select_for_update().prefetch_related("subjects").order_by("name")}
    entries = []
    for name, body in section.items():
        entry = _entry(name, body, stored.get(name), errors)
        if entry is not None:
            entries.append(entry)
    gone = [consumer for name, consumer in stored.items() if prune and name not in section]
    kept = [consumer for name, consumer in stored.items() if name not in section and consumer not in gone]
    _check_subjects(entries, kept, errors)
    _check_keys(entries, gone, errors)
    return ConsumersPlan(entries, gone)


def _entry(name: str, body: Any, stored: Consumer | None, errors: Errors) -> ConsumerEntry | None:
    here = consumer_path(name)
    if not isinstance(body, dict):
        errors[here] = ["Must be an object: the consumer's enabled, tags, jwt_subjects and api_keys."]
        return None
    for key in body:
        if key not in ENTRY_KEYS and key != "name":
            errors[join_path(here, key)] = [f"Unknown key; a consumer has {', '.join(ENTRY_KEYS)} (its name is its "
                                            "key in `consumers`)."]
    if "name" in body and body["name"] != name:
        errors[f"{here}.name"] = [f"The name is the consumer's key in `consumers`; leave it out or make it '{name}'."]
    fields = {key: body[key] for key in FIELDS if key in body}
    keys = _listed_keys(body["api_keys"], f"{here}.api_keys", errors) if "api_keys" in body else None
    try:
        doc = prepare_consumer({**fields, "name": name}, consumer=stored, subjects_by_others=False)
    except ConfigError as exc:
        for path, messages in exc.errors.items():
            # The name is the entry's key, so its errors are the entry's.
            errors.setdefault(here if path in ("", "name") else f"{here}.{path}", []).extend(messages)
        return None
    return ConsumerEntry(name, doc, stored, keys)


def _listed_keys(value: Any, here: str, errors: Errors) -> list[str] | None:
    if not isinstance(value, list):
        errors[here] = ['Must be a list like [{"key": "${env:BILLING_API_KEY}"}].']
        return None
    keys = []
    for index, item in enumerate(value):
        where = f"{here}[{index}]"
        if not isinstance(item, dict) or "key" not in item:
            errors[where] = ['Must be an object like {"key": "${env:BILLING_API_KEY}"}.']
            continue
        for key in item:
            if key not in KEY_ENTRY_KEYS:
                errors[join_path(where, key)] = ["Unknown key; a listed API key has only `key`."]
        key = item["key"]
        # The message never repeats the value: it may be a key with a typo, still a secret.
        if not isinstance(key, str) or len(key.encode()) > MAX_KEY_BYTES or not _KEY.fullmatch(key):
            errors[f"{where}.key"] = [KEY_RULE]
            continue
        keys.append(key)
    return keys


def _check_subjects(entries: list[ConsumerEntry], kept: list[Consumer], errors: Errors) -> None:
    """A subject is one consumer's after the apply: not also another entry's, nor a consumer's the document keeps."""
    owners = {subject.subject: consumer.name for consumer in kept for subject in consumer.subjects.all()}
    in_document: dict[str, str] = {}
    for entry in entries:
        for index, subject in enumerate(entry.doc["jwt_subjects"]):
            where = f"{consumer_path(entry.name)}.jwt_subjects[{index}]"
            if subject in owners:
                errors.setdefault(where, []).append(
                    f"'{subject}' is already a subject of consumer '{owners[subject]}', which this document leaves "
                    "as it is.")
            elif subject in in_document:
                errors.setdefault(where, []).append(
                    f"'{subject}' is also a subject of consumer '{in_document[subject]}' in this document.")
            else:
                in_document[subject] = entry.name


def _check_keys(entries: list[ConsumerEntry], gone: list[Consumer], errors: Errors) -> None:
    """A listed key is listed once, and is new or a usable key of the same consumer (or of one pruned away)."""
    listed: dict[str, str] = {}
    for entry in entries:
        for index, key in enumerate(entry.keys or ()):
            where = f"{consumer_path(entry.name)}.api_keys[{index}].key"
            digest = stored_digest(key)
            if digest in listed:
                errors.setdefault(where, []).append(f"The same key is listed at {listed[digest]}.")
            listed.setdefault(digest, where)
    by_digest = {key.digest: key for key in ApiKey.objects.filter(digest__in=listed).select_related("consumer")}
    now = timezone.now()
    gone_ids = {consumer.pk for consumer in gone}
    for entry in entries:
        for index, key in enumerate(entry.keys or ()):
            row = by_digest.get(stored_digest(key))
            if row is None or row.consumer_id in gone_ids:
                continue
            where = f"{consumer_path(entry.name)}.api_keys[{index}].key"
            if row.consumer.name != entry.name:
                errors.setdefault(where, []).append(
                    f"This key ({shown_key(row.prefix)}) is a key of consumer '{row.consumer.name}'; a key never "
                    "moves between consumers.")
            elif (state := row.state(now)) not in USABLE:
                errors.setdefault(where, []).append(
                    f"This key ({shown_key(row.prefix)}) is {state}; a document never brings a key back: list a new "
                    "one.")


# --- Write ---------------------------------------------------------------------------------------------------

@dataclass
class ConsumersWritten:
    """What writing a plan changed: consumers by name, and each value by path (keys by prefix)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)


def _usable_keys(consumer: Consumer, now: datetime) -> list[ApiKey]:
    return [key for key in ApiKey.objects.filter(consumer=consumer).order_by("id") if key.state(now) in USABLE]


def _shown_keys(keys: list[ApiKey]) -> list[str]:
    return [shown_key(key.prefix) for key in keys]


def write_consumers(plan: ConsumersPlan) -> ConsumersWritten:
    """Write a checked plan (no audit, no version bump: the apply writes one of each) and say what changed."""
    now = timezone.now()
    out = ConsumersWritten()
    by_name: dict[str, list[FieldChange]] = {}
    for consumer in plan.gone:
        old = {**_body(consumer), "api_keys": _shown_keys(_usable_keys(consumer, now))}
        by_name[consumer.name] = [FieldChange(consumer_path(consumer.name), old=old)]
        consumer.delete()
        out.deleted.append(consumer.name)
    befores = {entry.name: _body(entry.stored) for entry in plan.entries if entry.stored is not None}
    # Subjects are unique: release those that move before any consumer takes them.
    for entry in plan.entries:
        if entry.stored is not None:
            ConsumerSubject.objects.filter(consumer=entry.stored).exclude(subject__in=entry.doc["jwt_subjects"]).delete()
    for entry in plan.entries:
        here = consumer_path(entry.name)
        target = entry.stored or Consumer()
        keys_before = _usable_keys(target, now) if entry.stored is not None else []
        write_consumer(target, entry.doc)
        if entry.keys is not None:
            _write_keys(target, entry.keys, keys_before, now)
        after = _body(target)
        keys_after = _usable_keys(target, now)
        if entry.stored is None:
            shown = {**after, "api_keys": _shown_keys(keys_after)} if entry.keys is not None else after
            by_name[entry.name] = [FieldChange(here, new=shown)]
            out.created.append(entry.name)
            continue
        changes = field_changes(here, befores[entry.name], after)
        if {key.digest for key in keys_before} != {key.digest for key in keys_after}:
            shown_before, shown_after = _shown_keys(keys_before), _shown_keys(keys_after)
            # Two keys may share a prefix: then the change is real but reads the same, like a changed secret.
            changes.append(FieldChange(join_path(here, "api_keys"), shown_before, shown_after,
                                       secret=shown_before == shown_after))
        by_name[entry.name] = changes
        (out.updated if changes else out.unchanged).append(entry.name)
    for name in sorted(by_name):
        out.changes += by_name[name]
    return out


def _write_keys(consumer: Consumer, keys: list[str], usable: list[ApiKey], now: datetime) -> None:
    have = {key.digest for key in usable}
    wanted = {stored_digest(key) for key in keys}
    for key in keys:
        if stored_digest(key) not in have:
            store_key(consumer, key)
    # Revoked, not deleted: the key stays listed (as revoked), as when an operator revokes it.
    ApiKey.objects.filter(pk__in=[key.pk for key in usable if key.digest not in wanted]).update(revoked_at=now)
