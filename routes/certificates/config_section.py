"""The `certificates` section of a configuration document: TLS certificates by name, checked like the certificate
API, planned and then written as part of one configuration apply.

    certificates:
      api:
        hosts: [api.example.com]
        default: false
        certificate: "${file:tls/api.pem}"
        key: "${file:tls/api.key}"     # a dump writes <redacted>: applying it keeps the stored key

An entry is the whole certificate (hosts and default left out take their defaults). `key: <redacted>`, or no
`key`, keeps the stored key, which the certificate must then match; a new certificate needs its key. A dump
never holds a key, so, as for consumers, a document without this section leaves every certificate as it is even
with `prune`; with the section, `prune` deletes the certificates it does not list.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routes.certificates.models import Certificate
from routes.certificates.services import check_clashes, prepare_certificate, write_certificate
from routes.config_changes import FieldChange, field_changes, join_path
from routes.secrets import REDACTED
from routes.services import ConfigError

Errors = dict[str, list[str]]

SECTION = "certificates"
ENTRY_KEYS = ("hosts", "default", "certificate", "key")  # the name is the entry's key


def certificate_path(name: str) -> str:
    """Where a certificate is in the document and in a diff: `certificates.api`."""
    return join_path(SECTION, name)


# --- Dump ----------------------------------------------------------------------------------------------------

def _body(row: Certificate, *, key: bool) -> dict[str, Any]:
    """A certificate as the document has it (no name: that is its key); the key itself only with `key`."""
    return {"hosts": list(row.hosts), "default": row.default, "certificate": row.certificate,
            "key": row.key if key else REDACTED}


def dump_certificates(*, include_secrets: bool = False) -> dict[str, dict[str, Any]]:
    """Every certificate by name, sorted; keys `<redacted>` unless `include_secrets`."""
    return {row.name: _body(row, key=include_secrets) for row in Certificate.objects.order_by("name")}


# --- Plan ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CertificateEntry:
    """One certificate of the document, checked: its stored row (None: to create) and the document to write."""

    name: str
    doc: dict[str, Any]
    stored: Certificate | None


@dataclass(frozen=True)
class CertificatesPlan:
    """The checked `certificates` section: the entries in the document's order, and those a prune deletes."""

    entries: list[CertificateEntry]
    gone: list[Certificate]


def plan_certificates(section: Any, *, prune: bool, errors: Errors) -> CertificatesPlan | None:
    """The plan of a `certificates` section; its errors go into `errors` by path in the document."""
    if not isinstance(section, dict):
        errors[SECTION] = ['Must be an object of certificates by name, like {"api": {"certificate": "...", '
                           '"key": "..."}}.']
        return None
    stored = {row.name: row for row in Certificate.objects.select_for_update().order_by("name")}
    entries = []
    for name, body in section.items():
        entry = _entry(name, body, stored.get(name), errors)
        if entry is not None:
            entries.append(entry)
    gone = [row for name, row in stored.items() if prune and name not in section]
    kept = [row for name, row in stored.items() if name not in section and row not in gone]
    # Hosts and the default are one certificate's after the apply: checked against what the document keeps and
    # against the entries before each one.
    seen: list[dict[str, Any]] = [{"name": row.name, "hosts": row.hosts, "default": row.default} for row in kept]
    for entry in entries:
        check_clashes(entry.doc, seen, errors, prefix=f"{certificate_path(entry.name)}.")
        seen.append({"name": entry.name, "hosts": entry.doc["hosts"], "default": entry.doc["default"]})
    return CertificatesPlan(entries, gone)


def _entry(name: str, body: Any, stored: Certificate | None, errors: Errors) -> CertificateEntry | None:
    here = certificate_path(name)
    if not isinstance(body, dict):
        errors[here] = ["Must be an object: the certificate's hosts, default, certificate and key."]
        return None
    if "name" in body and body["name"] != name:
        errors[f"{here}.name"] = [f"The name is the certificate's key in `certificates`; leave it out or make it "
                                  f"'{name}'."]
    unknown = [key for key in body if key not in ENTRY_KEYS and key != "name"]
    for key in unknown:
        errors[join_path(here, key)] = [f"Unknown key; a certificate has {', '.join(ENTRY_KEYS)} (its name is its "
                                        "key in `certificates`)."]
    try:
        doc = prepare_certificate({key: body[key] for key in ENTRY_KEYS if key in body} | {"name": name},
                                  row=stored, check_others=False)
    except ConfigError as exc:
        for path, messages in exc.errors.items():
            # The name is the entry's key, so its errors are the entry's.
            errors.setdefault(here if path in ("", "name") else f"{here}.{path}", []).extend(messages)
        return None
    return None if unknown else CertificateEntry(name, doc, stored)


# --- Write ---------------------------------------------------------------------------------------------------

@dataclass
class CertificatesWritten:
    """What writing a plan changed: certificates by name, and each value by path (the key only as changed)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)


def write_certificates(plan: CertificatesPlan) -> CertificatesWritten:
    """Write a checked plan (no audit, no version bump: the apply writes one of each) and say what changed."""
    out = CertificatesWritten()
    by_name: dict[str, list[FieldChange]] = {}
    for row in plan.gone:
        by_name[row.name] = [FieldChange(certificate_path(row.name), old=_body(row, key=False))]
        row.delete()
        out.deleted.append(row.name)
    befores = {entry.name: _body(entry.stored, key=False) for entry in plan.entries if entry.stored is not None}
    # The default moving between certificates: the one that lets go of it first (one default, a constraint).
    Certificate.objects.filter(pk__in=[entry.stored.pk for entry in plan.entries
                                       if entry.stored is not None and not entry.doc["default"]]).update(default=False)
    for entry in plan.entries:
        here = certificate_path(entry.name)
        before = befores.get(entry.name)
        old_key = entry.stored.key if entry.stored is not None else None
        target = entry.stored or Certificate()
        write_certificate(target, entry.doc)
        after = _body(target, key=False)
        if before is None:
            by_name[entry.name] = [FieldChange(here, new=after)]
            out.created.append(entry.name)
            continue
        changes = field_changes(here, before, after)
        if old_key != target.key:
            changes.append(FieldChange(join_path(here, "key"), REDACTED, REDACTED, secret=True))
        by_name[entry.name] = changes
        (out.updated if changes else out.unchanged).append(entry.name)
    for name in sorted(by_name):
        out.changes += by_name[name]
    return out
