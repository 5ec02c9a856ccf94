"""BlockError, the one error of a config block that cannot be compiled, and the collector that gathers its problems."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class BlockError(ValueError):
    """A block that cannot be compiled (`jwt`, `rate_limit`, `cors`, `cache`, ...), raised by every compiler.

    `errors` maps a path inside the block (`algorithms`, `public_keys[0]`, `headers[2].pattern`, "" for the block
    itself) to readable messages that do not repeat the path. The control plane files them under
    `prefixed(block)` (`jwt.algorithms`); nothing reads the path back out of a message. A compiler of several
    blocks (a route's guards, its shaping) raises it with each path already prefixed by its block.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        # What the data plane's log shows: "path: message; path: message".
        super().__init__("; ".join(f"{path}: {' '.join(messages)}" if path else " ".join(messages)
                                   for path, messages in errors.items()))

    @classmethod
    def at(cls, path: str, message: str) -> BlockError:
        """The error of a compiler that stops at its first problem: one message at one path."""
        return cls({path: [message]})

    def prefixed(self, prefix: str) -> dict[str, list[str]]:
        """The errors with `prefix` (a block name) before each path."""
        return {(f"{prefix}.{path}" if path and not path.startswith("[") else f"{prefix}{path}"): messages
                for path, messages in self.errors.items()}


class Issues:
    """Collects problems while a block is compiled, so that one save reports all of them."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise BlockError(self.errors)


def join(prefix: str, key: str | int) -> str:
    """`headers` + 2 -> `headers[2]`; `headers[2]` + `name` -> `headers[2].name`."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def unknown_key_message(block: str, key: object, known: Iterable[str]) -> str:
    """The one wording of an unknown key, with the closest known keys when any is near (`treshold`); the control
    plane's checks (routes.block_keys) and the data plane's compilers both use it."""
    names = sorted(known)
    close = difflib.get_close_matches(str(key), names, n=2)
    hint = f" Did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
    return f"Unknown key; {block} knows {', '.join(names)}.{hint}"


def compiled(compile_block: Callable[[Any, Issues], T | None], value: Any) -> T | None:
    """A block compiled by `compile_block(value, issues)`: None for a null block (or what the compiler answers for
    a disabled one); raises BlockError with every problem it found."""
    if value is None:
        return None
    issues = Issues()
    policy = compile_block(value, issues)
    issues.raise_if_any()
    return policy


def opened(value: Any, issues: Issues, block: str, keys: Mapping[str, Any], example: str) -> bool:
    """The first checks of a block that is an object with an `enabled` switch: an object (`example` shows one),
    no key outside `keys` (notes starting with `_` aside), `enabled` true or false. Whether the block is an
    enabled object; each problem goes to `issues`."""
    if not isinstance(value, dict):
        issues.add("", f"Must be an object (or null for none), like {example}.")
        return False
    for key in value:
        if key not in keys and not str(key).startswith("_"):
            issues.add(str(key), unknown_key_message(block, key, keys))
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        issues.add("enabled", "Must be true or false.")
    return enabled is not False
