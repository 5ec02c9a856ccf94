"""A small LRU of verified tokens, so a client sending the same token again skips the signature check."""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class TokenCache(Generic[T]):
    """Verified token bytes (JwtPolicy: the whole Authorization value) -> what verifying them produced, each
    entry good until its own deadline.

    Only tokens that passed every check are stored, so garbage cannot fill it; at most `size` entries of at
    most `max_token_bytes` each are kept, least recently used first out. Keyed by the exact token bytes:
    a token that differs in one byte is a different key and is verified in full.
    """

    def __init__(self, size: int = 1024, max_token_bytes: int = 4096) -> None:
        self.size = size
        self.max_token_bytes = max_token_bytes
        self._entries: OrderedDict[bytes, tuple[T, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: bytes, now: float) -> T | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if now >= entry[1]:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry[0]

    def put(self, token: bytes, value: T, until: float) -> None:
        if self.size <= 0 or len(token) > self.max_token_bytes:
            return
        self._entries[token] = (value, until)
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
