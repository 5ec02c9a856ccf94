"""Query parameter rules (add, set, remove, rename) on the raw query string.

Parameters the rules do not name keep their exact bytes and order (no re-encoding, so a backend that signs its
query still sees what the client sent). Names are compared decoded (`a%5Bb%5D` is `a[b]`, `+` is a space);
values the rules write are percent-encoded.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_plus

from protocols.block_errors import Issues, join
from protocols.transform.rules import Entry, read_entries

QueryOp = Callable[[list[bytes]], list[bytes]]

ACTIONS = ("add", "set", "remove", "rename")
RULE_KEYS = frozenset({"name", "value", "to"})
MAX_VALUE = 2048


def compile_query(value: Any, path: str, issues: Issues) -> tuple[QueryOp, ...]:
    ops: list[QueryOp] = []
    for entry in read_entries(value, path, issues, actions=ACTIONS, target="name", known=RULE_KEYS):
        op = _compile(entry, issues)
        if op is not None:
            ops.append(op)
    return tuple(ops)


def _text(entry: Entry, key: str, issues: Issues, what: str) -> str | None:
    value = entry.fields.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "value":
        value = str(value)
    if not isinstance(value, str) or (key != "value" and not value) or len(value) > MAX_VALUE:
        issues.add(join(entry.path, key), f"A {entry.action} rule needs {what} (at most {MAX_VALUE} characters).")
        return None
    return value


def _compile(entry: Entry, issues: Issues) -> QueryOp | None:
    name = _text(entry, "name", issues, "a parameter name")
    if entry.action == "remove":
        return _remove(name) if name is not None else None
    if entry.action == "rename":
        to = _text(entry, "to", issues, "the new parameter name in \"to\"")
        if name is None or to is None:
            return None
        return _rename(name, _encode(to)) if to != name else None
    value = _text(entry, "value", issues, "a string value")
    if name is None or value is None:
        return None
    pair = _encode(name) + b"=" + _encode(value)
    return _add(name, pair) if entry.action == "add" else _set(name, pair)


def _encode(text: str) -> bytes:
    return quote(text, safe="").encode("ascii")


def _name_of(piece: bytes) -> str:
    raw = piece.split(b"=", 1)[0]
    return unquote_plus(raw.decode("latin-1"))


def _add(name: str, pair: bytes) -> QueryOp:
    def add(pieces: list[bytes]) -> list[bytes]:
        if any(_name_of(piece) == name for piece in pieces):
            return pieces
        return [*pieces, pair]
    return add


def _set(name: str, pair: bytes) -> QueryOp:
    def set_(pieces: list[bytes]) -> list[bytes]:
        return [piece for piece in pieces if _name_of(piece) != name] + [pair]
    return set_


def _remove(name: str) -> QueryOp:
    def remove(pieces: list[bytes]) -> list[bytes]:
        return [piece for piece in pieces if _name_of(piece) != name]
    return remove


def _rename(name: str, to: bytes) -> QueryOp:
    """`name=v` becomes `to=v` (value bytes kept); parameters already called `to` are dropped."""
    to_name = unquote_plus(to.decode("ascii"))

    def rename(pieces: list[bytes]) -> list[bytes]:
        if not any(_name_of(piece) == name for piece in pieces):
            return pieces
        out = []
        for piece in pieces:
            current = _name_of(piece)
            if current == to_name:
                continue
            if current == name:
                _, sep, rest = piece.partition(b"=")
                piece = to + sep + rest
            out.append(piece)
        return out
    return rename


def apply(ops: tuple[QueryOp, ...], query: bytes) -> bytes:
    pieces = [piece for piece in query.split(b"&") if piece] if query else []
    for op in ops:
        pieces = op(pieces)
    return b"&".join(pieces)
