"""Every write of TLS certificates: validated, atomic, audited (the key never), and announced by a version bump.

The admin, the API and `manage.py config apply` call these functions. A document is `name`, `hosts`,
`certificate`, `key` and `default`; an update that leaves `key` out, or sends it as `<redacted>`, keeps the stored
key, and the (new) certificate must still match it. Gateways serve a change from their next table rebuild, like a
route's.
"""
from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from routes.certificates import pem
from routes.certificates.models import Certificate
from routes.models import AuditEntry
from routes.secrets import REDACTED
from routes.services import Actor, ConfigError, bump_version, diff, record_audit

Errors = dict[str, list[str]]

# Also a metric label (rusta_certificate_expiry_timestamp_seconds{certificate=...}) and a document key.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
NAME_RULE = "Use 1 to 100 letters, digits or '_.:-', starting with a letter or digit."
DOCUMENT_FIELDS = ("name", "hosts", "certificate", "key", "default")
READ_ONLY_FIELDS = ("id", "subject", "issuer", "not_before", "not_after", "fingerprint_sha256", "expires_in_days",
                    "created_at", "updated_at")  # shown by reads; ignored when sent back
AUDITED = ("name", "hosts", "default", "subject", "issuer", "not_after", "fingerprint_sha256")


# --- Reading ---------------------------------------------------------------------------------------------

def certificate_document(row: Certificate) -> dict[str, Any]:
    """The certificate as the API shows it: never the key."""
    return {
        "id": row.pk,
        "name": row.name,
        "hosts": list(row.hosts),
        "certificate": row.certificate,
        "default": row.default,
        "subject": row.subject,
        "issuer": row.issuer,
        "not_before": row.not_before,
        "not_after": row.not_after,
        "expires_in_days": row.expires_in_days(timezone.now()),
        "fingerprint_sha256": row.fingerprint_sha256,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _audited(row: Certificate) -> dict[str, Any]:
    """What the audit trail compares: the fields a reader can see (the key only as a marker)."""
    values = {field: getattr(row, field) for field in AUDITED}
    values["not_after"] = row.not_after.isoformat() if row.not_after else None
    return {**values, "hosts": list(row.hosts)}


# --- Checking --------------------------------------------------------------------------------------------

def prepare_certificate(data: Any, *, row: Certificate | None = None, partial: bool = False,
                        check_others: bool = True) -> dict[str, Any]:
    """The document `save_certificate` would store, with what was read from the chain; raises ConfigError naming
    each field. `row` is the stored certificate (its key is kept unless a new one is sent). `check_others=False`
    leaves out the checks against other stored certificates (a configuration apply checks its result itself)."""
    if not isinstance(data, dict):
        raise ConfigError({"": ['A certificate must be a JSON object like {"name": "api", "certificate": "-----BEGIN '
                                'CERTIFICATE-----...", "key": "-----BEGIN PRIVATE KEY-----..."}.']})
    errors: Errors = {}
    for key in data:
        if key not in DOCUMENT_FIELDS and key not in READ_ONLY_FIELDS:
            errors.setdefault(str(key), []).append(f"Unknown key; a certificate has {', '.join(DOCUMENT_FIELDS)}.")
    base: dict[str, Any] = {"hosts": [], "default": False}
    if row is not None and partial:
        base = {"name": row.name, "hosts": list(row.hosts), "certificate": row.certificate, "default": row.default}
    doc = {**base, **{key: data[key] for key in DOCUMENT_FIELDS if key in data}}
    keeps_key = row is not None and doc.get("key") in (None, REDACTED)
    if keeps_key:
        assert row is not None
        doc["key"] = row.key
    elif doc.get("key") == REDACTED:
        errors.setdefault("key", []).append(f"{REDACTED} keeps a stored key; a new certificate needs its key.")
    for pem_field in ("certificate", "key"):  # stored as PEM files are written, whatever the form trimmed
        if isinstance(doc.get(pem_field), str) and doc[pem_field].strip():
            doc[pem_field] = doc[pem_field].strip() + "\n"
    if not isinstance(doc.get("name"), str) or not NAME.match(doc["name"]):
        errors.setdefault("name", []).append(NAME_RULE)
    if not isinstance(doc.get("default"), bool):
        errors.setdefault("default", []).append("Must be true or false.")
    chain = pem.read_chain(doc.get("certificate"), errors)
    key = pem.read_key(doc.get("key"), errors) if "key" not in errors else None
    if chain is not None and key is not None and not pem.key_matches(chain, key):
        where = "certificate" if keeps_key else "key"
        errors.setdefault(where, []).append(
            "The stored key does not match this certificate: send the certificate's own key too." if keeps_key
            else "The key does not match the certificate (its public key is another's).")
    doc["hosts"] = pem.hosts_of(doc.get("hosts"), chain, errors)
    if chain is not None and not doc["hosts"] and not doc.get("default") and "hosts" not in errors:
        errors.setdefault("hosts", []).append("The certificate names no DNS name: list the hosts it serves, or make "
                                              "it the default.")
    if check_others:
        _check_others(doc, row, errors)
    if errors:
        raise ConfigError(errors)
    assert chain is not None
    doc.update(subject=chain.subject[:1000], issuer=chain.issuer[:1000], not_before=chain.not_before,
               not_after=chain.not_after, fingerprint_sha256=chain.fingerprint_sha256)
    return doc


def _check_others(doc: dict[str, Any], row: Certificate | None, errors: Errors) -> None:
    """A name, a host or the default that another stored certificate already has."""
    others = Certificate.objects.all() if row is None else Certificate.objects.exclude(pk=row.pk)
    others_list = list(others.only("name", "hosts", "default"))
    name = doc.get("name")
    if any(other.name == name for other in others_list):
        errors.setdefault("name", []).append(f"A certificate named '{name}' already exists.")
    check_clashes(doc, others_list, errors)


def check_clashes(doc: dict[str, Any], others: list[Certificate] | list[dict[str, Any]], errors: Errors,
                  prefix: str = "") -> None:
    """Errors (under `prefix`) for each of the document's hosts another certificate serves, and for a second
    default. `others` are rows or documents with name, hosts and default."""
    served: dict[str, str] = {}
    default_of = None
    for other in others:
        values = other if isinstance(other, dict) else {"name": other.name, "hosts": other.hosts,
                                                        "default": other.default}
        for host in values["hosts"]:
            served.setdefault(host, values["name"])
        if values["default"]:
            default_of = values["name"]
    for index, host in enumerate(doc.get("hosts") or []):
        if host in served:
            errors.setdefault(f"{prefix}hosts[{index}]", []).append(
                f"{host} is already served by certificate '{served[host]}': a host has one certificate.")
    if doc.get("default") is True and default_of is not None:
        errors.setdefault(f"{prefix}default", []).append(
            f"Certificate '{default_of}' is already the default: unset it there first (one default at most).")


# --- Writing ---------------------------------------------------------------------------------------------

def write_certificate(target: Certificate, doc: dict[str, Any]) -> None:
    """Store a document from `prepare_certificate` (no audit, no version bump: the caller writes them)."""
    for field in ("name", "hosts", "certificate", "key", "default", "subject", "issuer", "not_before", "not_after",
                  "fingerprint_sha256"):
        setattr(target, field, doc[field])
    try:
        with transaction.atomic():  # a savepoint: a race lost to the constraints becomes the caller's error
            target.save()
    except IntegrityError:
        raise ConfigError({"": ["Another change saved a certificate with this name or the default at the same "
                                "time; try again."]}) from None


def key_change(before: str | None, after: str) -> dict[str, list[Any]]:
    """The audit's entry for the key: that it changed, never what it is."""
    if before == after:
        return {}
    return {"key": [None if before is None else REDACTED, REDACTED]}


def save_certificate(data: Any, *, actor: Actor, source: str, row: Certificate | None = None,
                     partial: bool = False) -> Certificate:
    """Create (row=None) or change a certificate; raises ConfigError and saves nothing if invalid. With
    `partial` only the fields sent change."""
    with transaction.atomic():
        if row is not None:
            row = Certificate.objects.select_for_update().get(pk=row.pk)
        before = _audited(row) if row is not None else None
        old_key = row.key if row is not None else None
        doc = prepare_certificate(data, row=row, partial=partial)
        target = row or Certificate()
        write_certificate(target, doc)
        changes = {**diff(before, _audited(target)), **key_change(old_key, target.key)}
        record_audit(actor, source, AuditEntry.Action.UPDATE if row else AuditEntry.Action.CREATE,
                     "certificate", target.pk, target.name, changes)
        bump_version()
    return target


def delete_certificate(row: Certificate, *, actor: Actor, source: str) -> None:
    """Delete a certificate: the gateways stop serving it from their next table rebuild."""
    with transaction.atomic():
        before = _audited(row)
        pk, name = row.pk, row.name
        row.delete()
        record_audit(actor, source, AuditEntry.Action.DELETE, "certificate", pk, name,
                     {**diff(before, None), "key": [REDACTED, None]})
        bump_version()
