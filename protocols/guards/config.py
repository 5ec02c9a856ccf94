"""Reading one guard block: typed keys with defaults, every problem collected under its path before failing."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.block_errors import BlockError


class BlockReader:
    """Reads the keys of one block (`cors`, `limits`, ...); `finish()` raises BlockError if any was wrong, each
    problem at its path inside the block (`origins[1]`, "" for the block itself).

    Keys the block does not define are errors, not notes: a misspelt `alow` in an IP allow list would otherwise
    leave the route open. Keys starting with `_` are comments, as in the earlier gateway's files.
    """

    def __init__(self, block: Any, known: frozenset[str]) -> None:
        self.errors: dict[str, list[str]] = {}
        if block is None:
            block = {}
        if not isinstance(block, Mapping):
            self.add("", "Must be an object or null.")
            block = {}
        self.block: Mapping[str, Any] = block
        for key in block:
            if not isinstance(key, str) or (key not in known and not key.startswith("_")):
                self.add("", f"Unknown key '{key}'; the keys are: {', '.join(sorted(known))}.")

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def value(self, key: str, default: Any) -> Any:
        """The key's value; null or absent takes the default."""
        value = self.block.get(key)
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if not isinstance(value, bool):
            self.add(key, "Must be true or false.")
            return default
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.value(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(key, f"Must be a whole number from {low} to {high}.")
            return default
        return value

    def strings(self, key: str, default: list[str] | None, *, limit: int = 1000) -> list[str] | None:
        """A list of non-empty strings (or the default when absent or null)."""
        if self.block.get(key) is None:
            return default
        value = self.block[key]
        if not isinstance(value, list) or len(value) > limit:
            self.add(key, f"Must be a list of at most {limit} strings.")
            return default
        good: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.add(f"{key}[{index}]", "Must be a non-empty string.")
            else:
                good.append(item.strip())
        return good

    def text_or_off(self, key: str, default: str | None, *, limit: int = 4096) -> str | None:
        """A header value, or false/"" to send none. Absent or null keeps the default."""
        if key not in self.block or self.block[key] is None:
            return default
        value = self.block[key]
        if value is False or value == "":
            return None
        if not isinstance(value, str) or len(value) > limit or not _is_field_value(value):
            self.add(key, f"Must be a header value (printable text, at most {limit} characters), or false.")
            return default
        return value.strip()

    def finish(self) -> None:
        if self.errors:
            raise BlockError(self.errors)


def _is_field_value(value: str) -> bool:
    # RFC 9110 5.5: visible ASCII and spaces; no CR/LF, which would split the header.
    return all(" " <= ch <= "~" for ch in value)
