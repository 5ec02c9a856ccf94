"""PolicyError and the collector that gathers every problem of a block before raising it, each under its path."""
from __future__ import annotations


class PolicyError(ValueError):
    """A block that cannot be compiled. `errors` maps a path inside the block (`headers[2].pattern`, "" for the
    block itself) to readable messages; the control plane prefixes the block's name and shows them per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{path}: {' '.join(messages)}" if path else " ".join(messages)
                                   for path, messages in errors.items()))

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
            raise PolicyError(self.errors)


def join(prefix: str, key: str | int) -> str:
    """`headers` + 2 -> `headers[2]`; `headers[2]` + `name` -> `headers[2].name`."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key
