"""What an operator may name in `plugins`: the installed plugin packages and Rusta's own, each with the routes that
run it (`GET /api/plugins/`)."""
from __future__ import annotations

from typing import Any

from protocols.plugins import BUILTIN_AI, installed_plugins
from routes.models import GatewaySettings, Route


def _named(value: Any) -> set[str]:
    """The plugin names of one `plugins` list as stored."""
    return {entry["name"] for entry in value or () if isinstance(entry, dict) and isinstance(entry.get("name"), str)}


def _ai_on(block: Any) -> bool:
    """Whether an `ai_policy` block turns AI routing on (as protocols.ai.config compiles it)."""
    return isinstance(block, dict) and block.get("enabled", True) is True


def plugin_catalogue() -> list[dict[str, Any]]:
    """Every plugin that can run, by name: the installed packages' (`rusta.plugins` entry points) and Rusta's own
    `ai_routing`, each with its package and version, whether it checks its config at save time, whether the
    gateway-wide list has it, and the routes that list it (enabled or not); a package that cannot be imported
    says why in `error`."""
    stored = GatewaySettings.objects.only("plugins").first()  # read only: no row is made for it
    gateway = _named(stored.plugins if stored is not None else None)
    by_plugin: dict[str, list[str]] = {}
    ai_routes: list[str] = []
    for name, plugins, ai_policy in Route.objects.order_by("name").values_list("name", "plugins", "ai_policy"):
        for plugin in _named(plugins):
            by_plugin.setdefault(plugin, []).append(name)
        if _ai_on(ai_policy):
            ai_routes.append(name)
    rows = [{"name": BUILTIN_AI, "package": "rusta", "version": None, "builtin": True, "checks_config": True,
             "gateway_wide": False, "routes": ai_routes, "error": None}]
    for name, point in sorted(installed_plugins().items()):
        dist = point.dist
        row = {"name": name, "package": dist.name if dist else None, "version": dist.version if dist else None,
               "builtin": False, "checks_config": False, "gateway_wide": name in gateway,
               "routes": by_plugin.get(name, []), "error": None}
        try:
            row["checks_config"] = callable(getattr(point.load(), "check_config", None))
        except Exception as exc:  # a third party's package failing to import is what this row reports
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows
