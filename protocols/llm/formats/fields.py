"""Reading wire JSON with paths, and the one rule for fields a target format has no place for."""
from __future__ import annotations

from typing import Any

from protocols.llm.formats.chat import FormatError, Json, WireFormat


def obj(value: Any, path: str) -> Json:
    if not isinstance(value, dict):
        raise FormatError(path, "must be an object")
    return value


def lst(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(path, "must be an array")
    return value


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise FormatError(path, "must be a string")
    return value


def opt_string(value: Any, path: str) -> str | None:
    return None if value is None else string(value, path)


def number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(path, "must be a number")
    return float(value)


def integer(value: Any, path: str, minimum: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FormatError(path, f"must be an integer of at least {minimum}")
    return value


def boolean(value: Any, path: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise FormatError(path, "must be true or false")
    return value


def stops(value: Any, path: str) -> list[str]:
    """OpenAI's `stop` (a string or a list) and Anthropic's `stop_sequences` (a list) alike."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [string(item, f"{path}[{index}]") for index, item in enumerate(lst(value, path))]


def check_extras(extra: Json, droppable: frozenset[str] | set[str], path: str, source: WireFormat,
                 target: WireFormat, understood: frozenset[str] = frozenset()) -> None:
    """Refuse, naming it, the first field of `extra` that `target` cannot carry and that may not be dropped.

    Same format: everything passes through (the provider judges fields Rusta does not know). Across formats a
    field is either understood by the target's renderer, or droppable (a hint with no effect on what the answer
    says: store, seed, service_tier, cache_control, a field at its default value), or refused.
    """
    if source == target:
        return
    for key in extra:
        if key not in understood and key not in droppable:
            where = f"{path}.{key}" if path else key
            raise FormatError(where, f"cannot be translated from the {source} format to a {target} provider")
