"""The configuration file: export the whole configuration in the earlier gateway's format, and import one.

An import is one transaction through the same checks as every other write (routes.services): all of it applies,
or none of it, with an audit row per change and one version bump; a dry run reports exactly what a real run would
do and then rolls back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction

from routes.models import AuditEntry, GatewaySettings, Route
from routes.secrets import redact
from routes.services import (
    Actor,
    ConfigError,
    all_route_documents,
    bump_version,
    diff,
    enabled_documents,
    gateway_settings,
    record_audit,
    restore_route_secrets,
    route_document,
    unique_name,
    write_route,
    write_settings,
)
from routes.settings_blocks import SETTINGS_BLOCKS, block_changes, check_settings, settings_unknown_keys
from routes.validation import Errors, normalize_route, unknown_keys, validate_route, without_unknown_keys

TOP_LEVEL_KEYS = frozenset({"version", "routers", *SETTINGS_BLOCKS})


@dataclass
class ChangedNames:
    """The routes a change created, updated, left alone or deleted, and the settings blocks it added, changed or
    removed, by name only (a block's values may hold secrets): what an import and a configuration apply report."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    settings_added: list[str] = field(default_factory=list)
    settings_changed: list[str] = field(default_factory=list)
    settings_removed: list[str] = field(default_factory=list)


@dataclass
class ImportReport(ChangedNames):
    """Every change an import made (or, in a dry run, would make), and the keys it did not understand (by path)."""

    unknown_keys: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.settings_added or self.settings_changed
                    or self.settings_removed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DryRunDone(Exception):
    """Raised inside a dry run's transaction once its report is complete, so every write is rolled back."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("dry run")
        self.report = report


def export_config(*, include_secrets: bool = False) -> dict[str, Any]:
    """The whole configuration in the earlier gateway's file format, loadable by `import_config`."""
    row = gateway_settings()
    data: dict[str, Any] = {"version": 1}
    for block in SETTINGS_BLOCKS:
        value = getattr(row, block)
        if value is not None:
            data[block] = value if include_secrets else redact(value)
    routers = []
    for doc in all_route_documents():
        # Ids differ between installations, and the earlier gateway's file format has none.
        doc.pop("id")
        for backend in doc["backends"]:
            backend.pop("id")
        routers.append(doc if include_secrets else redact(doc))
    data["routers"] = routers
    return data


def import_config(data: Any, *, actor: Actor, source: str, replace: bool = False, strict: bool = False,
                  dry_run: bool = False) -> ImportReport:
    """Load a configuration file of the earlier gateway (or Rusta's export) in one transaction.

    Routes are matched by name (generated from the path when absent); with `replace`, routes and settings
    blocks not in the file are deleted. Any invalid route raises ConfigError naming each error by path, and
    nothing changes. Keys Rusta does not know are listed in the report (those of the resilience blocks are
    dropped, as no write may store them); with `strict` each one is an error instead. With `dry_run` the
    import runs in full, so its report is exactly what a real run would say, and is then rolled back
    (audit rows and the version bump included).
    """
    try:
        with transaction.atomic():
            report = _import_config(data, actor=actor, source=source, replace=replace, strict=strict)
            if dry_run:
                raise _DryRunDone(report)
    except _DryRunDone as done:
        done.report.dry_run = True
        return done.report
    return report


@dataclass
class ImportPlan:
    """A checked import, not yet written: each route's stored row (None: new) with the document to write, the
    stored routes by name (locked), those to delete, and the settings blocks to store."""

    routes: list[tuple[Route | None, dict[str, Any]]]
    existing: dict[str, Route]
    gone_ids: set[int]
    row: GatewaySettings
    new_blocks: dict[str, Any]
    unknown_keys: list[str]


def _import_config(data: Any, *, actor: Actor, source: str, replace: bool, strict: bool) -> ImportReport:
    """The import itself, writes and audit rows included; `import_config` decides whether they are kept."""
    with transaction.atomic():
        plan = plan_import(data, replace=replace, strict=strict)
        report = ImportReport(unknown_keys=plan.unknown_keys)
        for route, doc in plan.routes:
            before = route_document(route) if route is not None else None
            target = route or Route()
            write_route(target, doc)
            after = route_document(target)
            if before is None:
                report.created.append(target.name)
            elif diff(before, after):
                report.updated.append(target.name)
            else:
                report.unchanged.append(target.name)
                continue
            record_audit(actor, source, AuditEntry.Action.IMPORT, "route", target.pk, target.name, diff(before, after))
        for name, route in plan.existing.items():
            if route.pk in plan.gone_ids:
                before = route_document(route)
                route.delete()
                report.deleted.append(name)
                record_audit(actor, source, AuditEntry.Action.DELETE, "route", before["id"], name, diff(before, None))
        changes = block_changes(plan.row, plan.new_blocks)
        write_settings(plan.row, changes, actor=actor, source=source, action=AuditEntry.Action.IMPORT)
        for change in changes:
            getattr(report, f"settings_{change.kind}").append(change.block)
        # A file that changes nothing must not make every gateway process rebuild its table.
        if report.changed:
            bump_version()
    return report


def plan_import(data: Any, *, replace: bool, strict: bool) -> ImportPlan:
    """Every check of an import, and nothing written; raises ConfigError naming each error by path.

    Call it inside a transaction: it locks the stored routes until the plan is written (routes.config_files
    writes a plan its own way, audited as one change).
    """
    if not isinstance(data, dict):
        raise ConfigError({"": ["The configuration must be a JSON object with a 'routers' list."]})
    routers = data.get("routers", [])
    if not isinstance(routers, list):
        raise ConfigError({"routers": ["Must be a list of router objects."]})
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS and not str(key).startswith("_")]
    settings_unknown = settings_unknown_keys(data)
    unknown += list(settings_unknown)
    errors: Errors = {}
    existing = {r.name: r for r in Route.objects.select_for_update().prefetch_related("backends")}
    taken_in_file: set[str] = set()
    planned: list[tuple[Route | None, dict[str, Any]]] = []
    for index, raw in enumerate(routers):
        prefix = f"routers[{index}]"
        if not isinstance(raw, dict):
            errors[prefix] = ["Must be an object."]
            continue
        unknown += unknown_keys(raw, prefix)
        doc = normalize_route(raw) if strict else without_unknown_keys(normalize_route(raw))
        doc.pop("id", None)  # routes are matched by name; ids differ between installations
        if not doc.get("name"):
            doc["name"] = unique_name(doc, taken_in_file)
        name = doc["name"] if isinstance(doc["name"], str) else None
        if name is not None and name in taken_in_file:
            errors.setdefault(f"{prefix}.name", []).append(f"The name '{name}' is used twice in the file.")
        if name is not None:
            taken_in_file.add(name)
        route = existing.get(name) if name is not None else None
        for key, messages in restore_route_secrets(doc, route, f"{prefix}.").items():
            errors.setdefault(key, []).extend(messages)
        planned.append((route, doc))
    kept_ids = {r.pk for name, r in existing.items() if name in taken_in_file}
    gone_ids = {r.pk for name, r in existing.items() if name not in taken_in_file} if replace else set()
    others = enabled_documents(exclude_ids=kept_ids | gone_ids)
    for index, (route, doc) in enumerate(planned):
        if route is not None:
            doc["id"] = route.pk
        route_errors = validate_route(doc, others)
        for key, messages in route_errors.items():
            errors.setdefault(f"routers[{index}].{key}", []).extend(messages)
        # Only valid routes take part in later clash checks; an invalid one is already reported.
        if doc.get("enabled") and not route_errors:
            others.append(doc)
    row = gateway_settings()
    # With `replace` the database equals the file: a block it lacks is cleared.
    new_blocks = check_settings(data, row, errors, clear_absent=replace)
    if strict:
        # Paths that validation already refused (`retry.treshold`) keep their own message; a settings block's
        # key gets the same wording as through the API (`ai.temp`: what `ai` knows, the closest name).
        for path in unknown:
            errors.setdefault(path, [settings_unknown.get(path, "Unknown key; Rusta does not use it.")])
    if errors:
        raise ConfigError(errors)
    return ImportPlan(planned, existing, gone_ids, row, new_blocks, unknown)
