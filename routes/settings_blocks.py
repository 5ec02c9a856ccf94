"""The gateway-wide settings blocks: their names, and the one check of a change to them (import, API and admin).

`check_settings` is the whole rule set; routes.services calls it from the import and from `save_settings`, so a
block the admin or the API accepts is exactly one an import of the same block accepts. It never writes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from protocols.ai.config import gateway_ai
from protocols.block_errors import BlockError
from protocols.plugins import plugin_entries
from routes.access_blocks import validate_settings_access
from routes.block_keys import BLOCKS, unknown_paths, without_unknown
from routes.guard_blocks import GUARD_FIELDS, validate_settings_blocks
from routes.models import GatewaySettings
from routes.secrets import missing_secret_errors, redact, restore_secrets
from routes.validation import Errors

SETTINGS_BLOCKS = ("jwt", "rate_limit", "ai", *GUARD_FIELDS, "plugins")


@dataclass(frozen=True)
class BlockChange:
    """One settings block whose stored value a change replaces (None: no block)."""

    block: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        """"added", "removed" or "changed", as the import's report and the API's answer name it."""
        if self.old is None:
            return "added"
        return "removed" if self.new is None else "changed"


@dataclass
class SettingsReport:
    """The blocks a change added, changed or removed, by name, and every block after it, secrets redacted."""

    settings: dict[str, Any]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    dry_run: bool = False

    @classmethod
    def of(cls, stored: GatewaySettings, changes: list[BlockChange], *, dry_run: bool = False) -> SettingsReport:
        """The report of `changes` to `stored` (read before they are written, so a dry run reports the same)."""
        after = settings_document(stored, include_secrets=True)
        after.update({change.block: change.new for change in changes})
        report = cls(settings=redact(after), dry_run=dry_run)
        for change in changes:
            getattr(report, change.kind).append(change.block)
        return report

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings_unknown_keys(data: dict[str, Any]) -> dict[str, str]:
    """`{path: message}` for each key inside the blocks of `data` that its block does not know (`ai.temperature`)."""
    found: dict[str, str] = {}
    for block in SETTINGS_BLOCKS:
        found.update(unknown_paths(block, data.get(block)))
    return found


def unknown_blocks(data: dict[str, Any]) -> Errors:
    """An error for each top-level key of a settings document that is not a block (`rate_limt`)."""
    known = ", ".join(SETTINGS_BLOCKS)
    return {str(key): [f"Unknown settings block; the blocks are {known}."] for key in data
            if key not in SETTINGS_BLOCKS}


def check_settings(data: dict[str, Any], stored: GatewaySettings, errors: Errors, *,
                   clear_absent: bool) -> dict[str, Any]:
    """The blocks a change would store, with their `<redacted>` secrets restored from `stored`.

    A block in `data` (null included: no block) is in the result; a block absent from `data` is left out, or is
    None with `clear_absent`. Errors are added to `errors` by path (`rate_limit.window_s`, `cors.origins[0]`,
    `jwt.secret` for a marker with nothing stored behind it); a block with an error is not fit to store.
    """
    for block in SETTINGS_BLOCKS:
        if BLOCKS[block].listed:
            if data.get(block) is not None and not isinstance(data[block], list):
                errors[block] = ["Must be a list or null."]
        elif data.get(block) is not None and not isinstance(data[block], dict):
            errors[block] = ["Must be an object or null."]
    validate_settings_blocks(data, errors)
    new_blocks: dict[str, Any] = {}
    for block in SETTINGS_BLOCKS:
        if block in data and block not in errors:
            missing: list[str] = []
            new_blocks[block] = restore_secrets(data[block], getattr(stored, block), block, missing)
            errors.update(missing_secret_errors(missing))
        elif clear_absent and block not in data:
            new_blocks[block] = None
    # Compiled once their `<redacted>` secrets are restored: the marker itself is no key.
    clean = {block: value for block, value in new_blocks.items()
             if not any(key == block or key.startswith(f"{block}.") for key in errors)}
    validate_settings_access(clean, errors)
    if isinstance(clean.get("ai"), dict):
        try:
            gateway_ai(without_unknown("ai", clean["ai"]))  # unknown keys are reported by path on their own
        except BlockError as exc:
            errors.update(exc.prefixed("ai"))
    if isinstance(clean.get("plugins"), list):
        try:
            plugin_entries(without_unknown("plugins", clean["plugins"]))
        except BlockError as exc:
            errors.update(exc.prefixed("plugins"))
    return new_blocks


def block_changes(stored: GatewaySettings, new_blocks: dict[str, Any]) -> list[BlockChange]:
    """The blocks whose value `new_blocks` changes, in SETTINGS_BLOCKS order."""
    return [BlockChange(block, getattr(stored, block), new) for block, new in new_blocks.items()
            if new != getattr(stored, block)]


def settings_document(stored: GatewaySettings, *, include_secrets: bool = False) -> dict[str, Any]:
    """Every block (null when there is none), secrets `<redacted>` unless asked for: what the API and the admin
    show, and what they take back."""
    return {block: getattr(stored, block) if include_secrets else redact(getattr(stored, block))
            for block in SETTINGS_BLOCKS}
