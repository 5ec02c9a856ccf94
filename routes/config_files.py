"""Configuration as code: the whole configuration as one document (routes, consumers and certificates by name,
settings blocks), its dump, and the diff and apply of such a document, with `${env:NAME}` and `${file:PATH}`
references resolved.

The document (`manage.py config`, `/api/config/diff/` and `/api/config/apply/`):

    format_version: 1
    settings: {rate_limit: {...}, jwt: {...}}      # the gateway-wide blocks by name
    routes: {users: {external_path: ..., ...}}     # every route by name, the whole route
    consumers: {billing: {tags: [...], ...}}       # every consumer by name (routes.consumers.config_section)
    certificates: {api: {hosts: [...], ...}}       # every TLS certificate by name, its key <redacted> in a dump
                                                   # (routes.certificates.config_section)

A section left out is not managed: apply leaves it as it is, unless `prune` (then it is emptied; never so for
`consumers` and `certificates`, whose API keys and private keys no dump holds, so a prune cannot take them back).
Inside a section the same holds for each entry: a route or settings block the document lacks is kept, or with
`prune` deleted. A document is checked by the import's rules (routes.import_export.plan_import, as `importconfig
--strict`), and applied in one transaction audited as one change; a diff is that apply rolled back, so it is
exactly what an apply would do.

`manage.py config apply` remembers the references it resolved (routes.config_references), so `config dump` writes
them back where the stored value is still what they resolved to; the HTTP API neither resolves nor remembers any.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from routes.certificates.config_section import SECTION as CERTIFICATES
from routes.certificates.config_section import (
    CertificatesPlan,
    dump_certificates,
    plan_certificates,
    write_certificates,
)
from routes.config_changes import MISSING, FieldChange, below, field_changes, join_path
from routes.config_references import remember, rewrite, stored_references, written_values
from routes.consumers.config_section import SECTION as CONSUMERS
from routes.consumers.config_section import ConsumersPlan, dump_consumers, plan_consumers, write_consumers
from routes.import_export import ChangedNames, ImportPlan, plan_import
from routes.models import AuditEntry, Route
from routes.schema import BLOCK_NAMES
from routes.secrets import REDACTED, redact
from routes.services import (
    Actor,
    ConfigError,
    all_route_documents,
    bump_version,
    config_version,
    gateway_settings,
    record_audit,
    route_document,
    write_route,
)
from routes.settings_blocks import SETTINGS_BLOCKS, block_changes, unknown_blocks
from routes.validation import Errors

FORMAT_VERSION = 1
# Sections a document may manage (each absent one: not managed).
SECTIONS = ("settings", "routes", CONSUMERS, CERTIFICATES)
# The one audit row of an apply.
APPLY_ACTION = AuditEntry.Action.APPLY
MAX_FILE_REFERENCE_BYTES = 1 << 20
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z]+):([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROUTER_PATH = re.compile(r"routers\[(\d+)\]")


# --- Paths and references ------------------------------------------------------------------------------------

def route_path(name: str) -> str:
    """Where a route is in the document and in a diff: `routes.users`."""
    return join_path("routes", name)


@dataclass(frozen=True)
class References:
    """Where `${env:NAME}` and `${file:PATH}` are read from; None refuses that kind of reference.

    `manage.py config` reads the operator's environment and files (a relative PATH is relative to the document's
    directory). The HTTP API refuses both: resolved on the server, they would let an operator copy the gateway's
    own environment (its database password) or files into a field anyone with the viewer role can read.
    """

    env: Mapping[str, str] | None = None
    base_dir: Path | None = None


def resolve_references(value: Any, refs: References, errors: Errors, path: str = "") -> Any:
    """`value` with every reference inside its strings replaced (`$${` is a literal `${`); errors by path."""
    if isinstance(value, dict):
        return {key: resolve_references(item, refs, errors, join_path(path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_references(item, refs, errors, f"{path}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _REFERENCE.sub(lambda match: _resolve(match, refs, errors, path), value)


def _resolve(match: re.Match[str], refs: References, errors: Errors, path: str) -> str:
    if match.group(0) == "$${":
        return "${"
    kind, target = match.group(1), match.group(2)
    try:
        if kind == "env":
            return _env(target, refs)
        if kind == "file":
            return _file(target, refs)
        raise ValueError(f"Unknown reference {match.group(0)}; use ${{env:NAME}} or ${{file:PATH}} "
                         "(write $${ for a literal ${).")
    except ValueError as exc:
        errors.setdefault(path, []).append(str(exc))
        return match.group(0)


def _env(name: str, refs: References) -> str:
    if refs.env is None:
        raise ValueError(_NOT_HERE)
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not an environment variable name.")
    if name not in refs.env:
        raise ValueError(f"The environment variable {name} is not set.")
    return refs.env[name]


def _file(name: str, refs: References) -> str:
    if refs.base_dir is None:
        raise ValueError(_NOT_HERE)
    target = refs.base_dir / Path(name).expanduser()
    try:
        with target.open("rb") as handle:
            raw = handle.read(MAX_FILE_REFERENCE_BYTES + 1)  # bounded: a path like /dev/zero never ends
    except OSError as exc:
        raise ValueError(f"Cannot read {target}: {exc.strerror or exc}.") from None
    if len(raw) > MAX_FILE_REFERENCE_BYTES:
        raise ValueError(f"{target} is larger than {MAX_FILE_REFERENCE_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{target} is not UTF-8 text.") from None
    # Files written by editors and `echo` end with a newline that is no part of the secret.
    return text.removesuffix("\n").removesuffix("\r")


_NOT_HERE = ("References are resolved only by `manage.py config`, never over HTTP; send the value itself "
             f"(or {REDACTED} to keep a stored secret).")


# --- The document --------------------------------------------------------------------------------------------

def _route_body(doc: dict[str, Any]) -> dict[str, Any]:
    """A route document as the file has it: no ids (they differ between installations), no name (its key),
    no null block (a block left out is null)."""
    body = {key: value for key, value in doc.items()
            if key not in ("id", "name") and not (key in BLOCK_NAMES and value is None)}
    body["backends"] = [{key: value for key, value in backend.items() if key != "id"} for backend in doc["backends"]]
    return body


def _stored_document() -> dict[str, Any]:
    """The whole configuration as a document, secrets and all, `${` unescaped."""
    row = gateway_settings()
    routes = {doc["name"]: _route_body(doc) for doc in sorted(all_route_documents(), key=lambda d: d["name"])}
    return {
        "format_version": FORMAT_VERSION,
        "settings": {block: getattr(row, block) for block in SETTINGS_BLOCKS if getattr(row, block) is not None},
        "routes": routes,
        CONSUMERS: dump_consumers(),
        CERTIFICATES: dump_certificates(include_secrets=True),
    }


def dump_config(*, include_secrets: bool = False, references: bool = False) -> dict[str, Any]:
    """The whole configuration as a document that `apply_config` takes back unchanged; secrets `<redacted>`
    (applying it keeps the stored ones) unless `include_secrets`. With `references` (and not `include_secrets`),
    a value a `manage.py config apply` resolved from a reference is written as that reference again while the
    stored value is still what it resolved to. A literal `${` is written `$${`, so applying gives it back."""
    stored = _stored_document()
    shown = stored if include_secrets else {
        **stored,
        # Each block and route on its own: a route named like a secret (`token`) must not be redacted whole.
        "settings": {block: redact(value) for block, value in stored["settings"].items()},
        "routes": {name: redact(body) for name, body in stored["routes"].items()},
        CERTIFICATES: dump_certificates(),
    }
    written = stored_references() if references and not include_secrets else _no_reference
    document: dict[str, Any] = rewrite(stored, shown, written=written)
    return document


def _no_reference(path: str, value: str) -> None:
    return None


def _as_import(data: Any, errors: Errors) -> tuple[dict[str, Any], list[str]]:
    """The import's document for a configuration document (`routers` in the file's order), and each router's name."""
    if not isinstance(data, dict):
        raise ConfigError({"": [f"The configuration must be an object with the sections {', '.join(SECTIONS)} "
                                "(each optional)."]})
    for key in data:
        if key != "format_version" and key not in SECTIONS:
            errors[join_path("", key)] = [f"Unknown section; the sections are {', '.join(SECTIONS)}."]
    if "format_version" in data and data["format_version"] != FORMAT_VERSION:
        errors["format_version"] = [f"Must be {FORMAT_VERSION}, the only format there is."]
    if not any(section in data for section in SECTIONS):
        # With --prune, such a document would delete everything: far likelier the wrong file than the wish.
        errors[""] = [f"The document names none of the sections {', '.join(SECTIONS)}; write `routes: {{}}` to "
                      "manage an empty set of routes."]
    imported: dict[str, Any] = {}
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        errors["settings"] = ["Must be an object of settings blocks by name, like {\"rate_limit\": {...}}."]
    else:
        for key, messages in unknown_blocks(settings).items():
            errors[join_path("settings", key)] = messages
        imported.update({block: value for block, value in settings.items() if block in SETTINGS_BLOCKS})
    routes = data.get("routes", {})
    routers: list[dict[str, Any]] = []
    names: list[str] = []
    if not isinstance(routes, dict):
        errors["routes"] = ["Must be an object of routes by name, like {\"users\": {\"external_path\": ...}}."]
        routes = {}
    for name, body in routes.items():
        router = _as_router(name, body, errors)
        if router is not None:
            routers.append(router)
            names.append(name)
    imported["routers"] = routers
    return imported, names


def _as_router(name: str, body: Any, errors: Errors) -> dict[str, Any] | None:
    here = route_path(name)
    if not name.strip():
        errors[here] = ["A route's name must not be empty."]
        return None
    if not isinstance(body, dict):
        errors[here] = ["Must be an object: the route's fields."]
        return None
    # Keys the import skips or ignores are refused here: nothing in a document goes unread.
    for key in body:
        if key == "id" or str(key).startswith("_"):
            errors[join_path(here, key)] = ["Unknown key; a route is named by its key in `routes`, and ids differ "
                                            "between installations." if key == "id" else "Unknown key."]
    backends = body.get("backends")
    for index, backend in enumerate(backends if isinstance(backends, list) else []):
        for key in backend if isinstance(backend, dict) else ():
            if key == "id" or str(key).startswith("_"):
                errors[join_path(f"{here}.backends[{index}]", key)] = ["Unknown key."]
    if "name" in body and body["name"] != name:
        errors[f"{here}.name"] = [f"The name is the route's key in `routes`; leave it out or make it '{name}'."]
    return {**{key: value for key, value in body.items() if key != "id"}, "name": name}


def _routes_path(path: str, names: list[str]) -> str:
    """An import error's path (`routers[2].retry`, `rate_limit.limit`) in the document (`routes.users.retry`)."""
    match = _ROUTER_PATH.match(path)
    if match:
        return route_path(names[int(match.group(1))]) + path[match.end():]
    if path in ("", "routers"):
        return "routes" if path else ""
    return f"settings.{path}"


@dataclass(frozen=True)
class _Plan:
    """A checked document: the import's plan of routes and settings, and the consumers' and certificates' (None:
    not managed)."""

    routes: ImportPlan
    consumers: ConsumersPlan | None
    certificates: CertificatesPlan | None
    resolved: Any  # the document with its references resolved


def _plan(data: Any, refs: References, *, prune: bool) -> _Plan:
    """The checked plan of a document; ConfigError with every error by its path in the document."""
    errors: Errors = {}
    resolved = resolve_references(data, refs, errors)
    unresolved = list(errors)
    imported, names = _as_import(resolved, errors)
    found: Errors = {}
    plan: ImportPlan | None = None
    consumers = plan_consumers(resolved[CONSUMERS], prune=prune, errors=found) if CONSUMERS in resolved else None
    certificates = (plan_certificates(resolved[CERTIFICATES], prune=prune, errors=found)
                    if CERTIFICATES in resolved else None)
    try:
        plan = plan_import(imported, replace=prune, strict=True)
    except ConfigError as exc:
        for path, messages in exc.errors.items():
            found.setdefault(_routes_path(path, names), []).extend(messages)
    for where, messages in found.items():
        # An unresolved reference is its value's one error: the literal `${env:...}` is no real value.
        if not any(below(where, bad) for bad in unresolved):
            errors.setdefault(where, []).extend(messages)
    if errors or plan is None:
        raise ConfigError(errors)
    return _Plan(plan, consumers, certificates, resolved)


# --- Diff and apply ------------------------------------------------------------------------------------------

@dataclass
class ConfigDiff(ChangedNames):
    """What applying a document changes: routes, settings blocks and consumers by name, and each value by path."""

    consumers_created: list[str] = field(default_factory=list)
    consumers_updated: list[str] = field(default_factory=list)
    consumers_unchanged: list[str] = field(default_factory=list)
    consumers_deleted: list[str] = field(default_factory=list)
    certificates_created: list[str] = field(default_factory=list)
    certificates_updated: list[str] = field(default_factory=list)
    certificates_unchanged: list[str] = field(default_factory=list)
    certificates_deleted: list[str] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    applied: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "applied": self.applied,
            "routes": {"created": self.created, "updated": self.updated, "deleted": self.deleted,
                       "unchanged": self.unchanged},
            "settings": {"added": self.settings_added, "changed": self.settings_changed,
                         "removed": self.settings_removed},
            CONSUMERS: {"created": self.consumers_created, "updated": self.consumers_updated,
                        "deleted": self.consumers_deleted, "unchanged": self.consumers_unchanged},
            CERTIFICATES: {"created": self.certificates_created, "updated": self.certificates_updated,
                           "deleted": self.certificates_deleted, "unchanged": self.certificates_unchanged},
            "changes": [change.as_dict() for change in self.changes],
        }

    def audit_changes(self) -> dict[str, list[Any]]:
        """The audit row's `{path: [before, after]}` (absent: null; a secret: `<redacted>` both sides)."""
        def shown(value: Any, secret: bool) -> Any:
            return REDACTED if secret else (None if value is MISSING else value)
        return {c.path: [shown(c.old, c.secret), shown(c.new, c.secret)] for c in self.changes}


class _RolledBack(Exception):
    """Raised inside the transaction of a diff or dry run once its result is known, so nothing is kept."""

    def __init__(self, result: ConfigDiff) -> None:
        super().__init__("rolled back")
        self.result = result


def _write(checked: _Plan) -> ConfigDiff:
    """Write a checked plan (no audit, no version bump) and say what changed."""
    result, plan = ConfigDiff(), checked.routes
    by_route: dict[str, list[FieldChange]] = {}
    for route, doc in plan.routes:
        before = _route_body(route_document(route)) if route is not None else None
        target = route or Route()
        write_route(target, doc)
        after = _route_body(route_document(target))
        if before is None:
            result.created.append(target.name)
            by_route[target.name] = [FieldChange(route_path(target.name), new=redact(after))]
        elif before != after:
            result.updated.append(target.name)
            by_route[target.name] = field_changes(route_path(target.name), before, after)
        else:
            result.unchanged.append(target.name)
    for name, route in plan.existing.items():
        if route.pk in plan.gone_ids:
            by_route[name] = [FieldChange(route_path(name), old=redact(_route_body(route_document(route))))]
            route.delete()
            result.deleted.append(name)
    for change in block_changes(plan.row, plan.new_blocks):
        getattr(result, f"settings_{change.kind}").append(change.block)
        old, new = (MISSING if value is None else value for value in (change.old, change.new))
        result.changes += field_changes(join_path("settings", change.block), old, new)
        setattr(plan.row, change.block, change.new)
    if result.settings_added or result.settings_changed or result.settings_removed:
        plan.row.save()
    for name in sorted(by_route):
        result.changes += by_route[name]
    if checked.consumers is not None:
        written = write_consumers(checked.consumers)
        result.consumers_created, result.consumers_updated = written.created, written.updated
        result.consumers_unchanged, result.consumers_deleted = written.unchanged, written.deleted
        result.changes += written.changes
    if checked.certificates is not None:
        done = write_certificates(checked.certificates)
        result.certificates_created, result.certificates_updated = done.created, done.updated
        result.certificates_unchanged, result.certificates_deleted = done.unchanged, done.deleted
        result.changes += done.changes
    return result


def apply_config(data: Any, *, actor: Actor, source: str, refs: References, prune: bool = False,
                 dry_run: bool = False, remember_references: bool = False) -> ConfigDiff:
    """Make the configuration what the document says, in one transaction: one audit row (action `apply`, the
    diff with secrets redacted) and one version bump, none when nothing changes. Raises ConfigError with every
    error by path, changing nothing; with `dry_run` the apply runs in full and is rolled back.

    `remember_references`: also remember, in the same transaction, the references the document's values were
    resolved from, for `dump_config(references=True)` (even when nothing changed: the values may have been
    stored another way before)."""
    try:
        with transaction.atomic():
            checked = _plan(data, refs, prune=prune)
            result = _write(checked)
            if dry_run:
                raise _RolledBack(result)
            if remember_references:
                remember(list(written_values(data, checked.resolved)), managed=_entries(data),
                         current=_stored_document())
            if result.changed:
                bump_version()
                record_audit(actor, source, APPLY_ACTION, "config", config_version().version, "configuration",
                             result.audit_changes())
                result.applied = True
    except _RolledBack as done:
        return done.result
    return result


def _entries(data: dict[str, Any]) -> list[str]:
    """The paths of the entries a checked document names (`settings.jwt`, `routes.users`, `consumers.billing`):
    each is written whole, so what it held before is no longer what the document says."""
    return [join_path(section, name) for section in SECTIONS for name in data.get(section) or {}]


def diff_config(data: Any, *, refs: References, prune: bool = False) -> ConfigDiff:
    """Exactly what `apply_config` of the document would change (it is that apply, rolled back)."""
    return apply_config(data, actor=None, source="diff", refs=refs, prune=prune, dry_run=True)


def validate_config(data: Any, *, refs: References, prune: bool = False) -> None:
    """Raise ConfigError with every error of the document by path; nothing is written."""
    with transaction.atomic():  # the plan locks the stored routes and consumers while it reads them
        _plan(data, refs, prune=prune)
