"""The two shapes a list of rules may take, read into one: the earlier gateway's list of `{"action": ...}` objects,
and Rusta's object keyed by action (`{"set": {"X-Env": "prod"}, "remove": ["X-Debug"]}`).

In the object form the actions run in a fixed order, whatever the order of the keys: remove, rename, replace,
set, add (so a header can be removed and then added afresh, and a rename happens before values are set on the
new name). In the list form they run in the order written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.block_errors import Issues, join

OBJECT_ORDER = ("remove", "rename", "replace", "set", "add")


@dataclass(frozen=True, slots=True)
class Entry:
    """One rule, whichever shape it came in: `fields` holds its keys; `path` locates it for messages."""

    action: str
    fields: dict[str, Any]
    path: str


def read_entries(value: Any, path: str, issues: Issues, *, actions: tuple[str, ...], target: str,
                 known: frozenset[str]) -> list[Entry]:
    """The rules of one list. `target` is the key naming what a rule acts on ("name" for headers and query
    parameters, "path" for JSON fields); `known` are the keys a list-form rule may have besides `action`."""
    if value is None:
        return []
    if isinstance(value, list):
        return _from_list(value, path, issues, actions, known)
    if isinstance(value, dict):
        return _from_object(value, path, issues, actions, target)
    issues.add(path, 'Must be a list of rules like [{"action": "set", ...}] or an object like {"set": {...}}.')
    return []


def _from_list(value: list[Any], path: str, issues: Issues, actions: tuple[str, ...],
               known: frozenset[str]) -> list[Entry]:
    entries = []
    for index, rule in enumerate(value):
        where = join(path, index)
        if not isinstance(rule, dict):
            issues.add(where, "Must be an object with an \"action\".")
            continue
        action = rule.get("action")
        if action not in actions:
            issues.add(join(where, "action"), f"Must be one of: {', '.join(actions)}.")
            continue
        unknown = sorted(str(key) for key in rule if key != "action" and key not in known
                         and not str(key).startswith("_"))
        for key in unknown:
            issues.add(join(where, key), f"Unknown key; a rule has: action, {', '.join(sorted(known))}.")
        entries.append(Entry(action, {key: rule[key] for key in known if key in rule}, where))
    return entries


def _from_object(value: dict[str, Any], path: str, issues: Issues, actions: tuple[str, ...],
                 target: str) -> list[Entry]:
    for key in value:
        if key not in actions and not str(key).startswith("_"):
            issues.add(join(path, str(key)), f"Unknown action; use: {', '.join(actions)}.")
    entries: list[Entry] = []
    for action in OBJECT_ORDER:
        if action not in actions or value.get(action) is None:
            continue
        body = value[action]
        where = join(path, action)
        if action == "remove":
            names = [body] if isinstance(body, str) else body
            if not isinstance(names, list):
                issues.add(where, f"Must be a list of {'names' if target == 'name' else 'paths'}.")
                continue
            entries += [Entry(action, {target: name}, join(where, index)) for index, name in enumerate(names)]
        elif action == "replace":
            rules = body if isinstance(body, list) else [body] if isinstance(body, dict) and target in body else None
            if rules is None and isinstance(body, dict):
                # {"User-Agent": {"pattern": ..., "replacement": ...}}
                rules = [{target: name, **spec} if isinstance(spec, dict) else {target: name, "pattern": spec}
                         for name, spec in body.items()]
            if not isinstance(rules, list):
                issues.add(where, 'Must be a list like [{"name": ..., "pattern": ..., "replacement": ...}].')
                continue
            for index, rule in enumerate(rules):
                if not isinstance(rule, dict):
                    issues.add(join(where, index), "Must be an object with name, pattern and replacement.")
                    continue
                for key in rule:
                    if key not in (target, "pattern", "replacement"):
                        issues.add(join(join(where, index), str(key)),
                                   f"Unknown key; use {target}, pattern and replacement.")
                entries.append(Entry(action, dict(rule), join(where, index)))
        else:
            if not isinstance(body, dict):
                shape = '{"Old": "New"}' if action == "rename" else '{"Name": "value"}'
                issues.add(where, f"Must be an object like {shape}.")
                continue
            second = "to" if action == "rename" else "value"
            entries += [Entry(action, {target: name, second: item}, join(where, str(name)))
                        for name, item in body.items()]
    return entries
