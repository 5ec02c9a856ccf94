"""The `plugins` list of a route and of the gateway settings: its entries checked by path, the installed plugins,
and the chain a route runs (gateway entries, replaced by the route's of the same name, ordered)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from protocols.block_errors import BlockError, Issues, join

ENTRY_POINT_GROUP = "rusta.plugins"
# Rusta's own plugins: put in a route's chain by its blocks, never listed in `plugins` (protocols.ai.plugin).
BUILTIN_AI = "ai_routing"
BUILTINS = {BUILTIN_AI: "AI routing runs from the route's ai_policy block; it is not listed in plugins."}
ENTRY_KEYS = ("name", "config", "order", "timeout_ms", "on_error")
ON_ERROR = ("fail", "continue")
DEFAULT_ORDER = 0
DEFAULT_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 10_000
DEFAULT_ON_ERROR = "fail"


@dataclass(frozen=True)
class PluginEntry:
    """One entry of a `plugins` list, checked: the installed plugin's name, its own config, when it runs among
    the others (`order`, lower first), its time budget per phase call, and what its failure does."""

    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    order: int = DEFAULT_ORDER
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    on_error: str = DEFAULT_ON_ERROR


def installed_plugins() -> dict[str, EntryPoint]:
    """{name: entry point} of the plugins installed as packages (group `rusta.plugins`); a package that takes
    the name of one of Rusta's own is left out."""
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP) if point.name not in BUILTINS}


def plugin_entries(value: Any, *, check_configs: bool = True) -> tuple[PluginEntry, ...]:
    """The entries of a `plugins` list (None: none); BlockError with every problem by path (`[1].timeout_ms`,
    `[0].config.header`). With `check_configs`, each installed plugin's `check_config(config)` judges its config."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BlockError.at("", 'Must be a list of plugins, like [{"name": "example", "config": {}}], or null.')
    issues = Issues()
    installed = installed_plugins()
    entries: list[PluginEntry] = []
    seen: set[str] = set()
    for index, raw in enumerate(value):
        where = join("", index)
        if not isinstance(raw, dict):
            issues.add(where, "Must be an object with the plugin's name.")
            continue
        for key in raw:
            if key not in ENTRY_KEYS:
                issues.add(join(where, str(key)), f"Unknown key; a plugin entry knows {', '.join(ENTRY_KEYS)}.")
        entry = _entry(raw, where, installed, seen, issues)
        if entry is None:
            continue
        if check_configs:
            _check_config(installed[entry.name], entry.config, join(where, "config"), issues)
        entries.append(entry)
    issues.raise_if_any()
    return tuple(entries)


def _entry(raw: dict[str, Any], where: str, installed: Mapping[str, EntryPoint], seen: set[str],
           issues: Issues) -> PluginEntry | None:
    name = raw.get("name")
    names = ", ".join(sorted(installed)) or "none is installed"
    ok = True
    if not isinstance(name, str) or not name:
        issues.add(join(where, "name"), f"Must name an installed plugin: {names}.")
        ok = False
    elif name in BUILTINS:
        issues.add(join(where, "name"), BUILTINS[name])
        ok = False
    elif name not in installed:
        issues.add(join(where, "name"), f"Unknown plugin {name!r}; installed: {names}.")
        ok = False
    elif name in seen:
        issues.add(join(where, "name"), f"Plugin {name!r} is listed twice; give it once.")
        ok = False
    config = raw.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        issues.add(join(where, "config"), "Must be an object (the plugin's own keys) or null.")
        ok = False
    order = raw.get("order", DEFAULT_ORDER)
    if not _is_int(order) or not -1000 <= order <= 1000:
        issues.add(join(where, "order"), "Must be a whole number from -1000 to 1000 (lower runs first).")
        ok = False
    timeout_ms = raw.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    if not _is_int(timeout_ms) or not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        issues.add(join(where, "timeout_ms"), f"Must be a whole number of milliseconds from 1 to {MAX_TIMEOUT_MS}.")
        ok = False
    on_error = raw.get("on_error", DEFAULT_ON_ERROR)
    if on_error not in ON_ERROR:
        issues.add(join(where, "on_error"), 'Must be "fail" (answer 502 plugin_failed) or "continue".')
        ok = False
    if not ok or not isinstance(name, str):
        return None
    seen.add(name)
    return PluginEntry(name, config, order, timeout_ms, on_error)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_config(point: EntryPoint, config: Mapping[str, Any], where: str, issues: Issues) -> None:
    """The plugin's own `check_config(config) -> {path: message}`, when its factory has one."""
    try:
        factory = point.load()
    except Exception as exc:  # a third party's package: it failing to import is a problem of this entry
        issues.add(where, f"The plugin cannot be loaded: {type(exc).__name__}: {exc}")
        return
    check = getattr(factory, "check_config", None)
    if check is None:
        return
    try:
        problems = check(dict(config))
    except Exception as exc:  # the plugin's own checker failing says nothing about which key is wrong
        issues.add(where, f"The plugin's check_config failed: {type(exc).__name__}: {exc}")
        return
    for path, message in (problems or {}).items():
        issues.add(join(where, str(path)) if path else where, str(message))


def route_chain(gateway: tuple[PluginEntry, ...], route: tuple[PluginEntry, ...]) -> tuple[PluginEntry, ...]:
    """The entries a route runs: the gateway's, each replaced by the route's entry of the same name, then the
    route's others; ordered by `order` (ties keep that order)."""
    own = {entry.name: entry for entry in route}
    merged = [own.pop(entry.name, entry) for entry in gateway]
    merged += [entry for entry in route if entry.name in own]
    return tuple(sorted(merged, key=lambda entry: entry.order))
