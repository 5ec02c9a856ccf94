"""Where a value is in a configuration document (`routes.users.retry`) and how an apply changes it, by path."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from routes.secrets import redact

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


MISSING: Any = _Missing()  # a key or list item that one side of a change does not have


def join_path(path: str, key: Any) -> str:
    """`path.key`, or `path["key"]` for a key a dot would make ambiguous (a route named `api.v1`)."""
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def below(path: str, parent: str) -> bool:
    """Whether `path` is `parent` or inside it."""
    return path == parent or path.startswith((f"{parent}.", f"{parent}["))


@dataclass(frozen=True)
class FieldChange:
    """One value a change adds, removes or replaces, at its path in the document; secrets only `<redacted>`.

    `secret`: a secret changed that reads `<redacted>` before and after, so neither value is shown.
    """

    path: str
    old: Any = MISSING
    new: Any = MISSING
    secret: bool = False

    @property
    def op(self) -> str:
        if self.old is MISSING:
            return "add"
        return "remove" if self.new is MISSING else "change"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "op": self.op, "secret": self.secret}
        if not self.secret:
            out.update({key: value for key, value in (("old", self.old), ("new", self.new)) if value is not MISSING})
        return out


def field_changes(path: str, old: Any, new: Any) -> list[FieldChange]:
    """Each leaf that differs between `old` and `new` (objects by key, lists of objects by index), shown redacted."""
    return list(_walk(path, old, new, redact(old), redact(new)))


def _walk(path: str, old: Any, new: Any, shown_old: Any, shown_new: Any) -> Iterator[FieldChange]:
    if old == new:
        return
    if all(isinstance(value, dict) for value in (old, new, shown_old, shown_new)):
        for key in [*old, *(key for key in new if key not in old)]:
            yield from _walk(join_path(path, key), old.get(key, MISSING), new.get(key, MISSING),
                             shown_old.get(key, MISSING), shown_new.get(key, MISSING))
        return
    if all(isinstance(value, list) and all(isinstance(item, dict) for item in value)
           for value in (old, new, shown_old, shown_new)):
        for index in range(max(len(old), len(new))):
            yield from _walk(f"{path}[{index}]", *(_item(items, index) for items in (old, new, shown_old, shown_new)))
        return
    yield FieldChange(path, shown_old, shown_new, secret=shown_old == shown_new)


def _item(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else MISSING
