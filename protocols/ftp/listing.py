"""Directory listings from an FTP server as JSON-ready entries: MLSD (RFC 3659) facts, or a Unix `ls -l` LIST."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_LS_LINE = re.compile(
    r"^(?P<mode>[-dlbcps])[-rwxsStT]{9}[.+@]?\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"(?P<date>\w{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4}))\s(?P<name>.+)$"
)
_LS_TYPES = {"-": "file", "d": "dir", "l": "link"}
_MLSD_TYPES = {"file": "file", "dir": "dir", "os.unix=symlink": "link", "os.unix=slink": "link"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry. `modified` is ISO 8601 UTC when the server says (MLSD), else None."""

    name: str
    type: str  # file, dir, link or other
    size: int | None = None
    modified: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "size": self.size, "modified": self.modified}


def _mlsd_time(value: str) -> str | None:
    if len(value) < 14 or not value[:14].isdigit():
        return None
    return f"{value[0:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:{value[12:14]}Z"


def parse_mlsd(text: str) -> list[Entry]:
    """Entries of an MLSD answer: `fact=value;...; name` per line; the directory itself and its parent skipped."""
    entries: list[Entry] = []
    for line in text.splitlines():
        facts_text, space, name = line.partition(" ")
        if not space or not name:
            continue
        facts: dict[str, str] = {}
        for fact in facts_text.split(";"):
            key, equals, value = fact.partition("=")
            if equals:
                facts[key.strip().lower()] = value
        kind = facts.get("type", "").lower()
        if kind in ("cdir", "pdir") or name in (".", ".."):
            continue
        size = facts.get("size")
        entries.append(Entry(
            name, _MLSD_TYPES.get(kind, "other"), int(size) if size and size.isdigit() else None,
            _mlsd_time(facts.get("modify", "")),
        ))
    return entries


def parse_list(text: str) -> list[Entry]:
    """Entries of a Unix-style LIST answer; lines it cannot read are skipped, "total" lines too."""
    entries: list[Entry] = []
    for line in text.splitlines():
        found = _LS_LINE.match(line)
        if found is None:
            continue
        kind = _LS_TYPES.get(found["mode"], "other")
        name = found["name"]
        if kind == "link":
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            continue
        entries.append(Entry(name, kind, int(found["size"])))
    return entries
