"""MemoryStore: the embedded default, an LRU of records bounded in bytes, private to one process."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from protocols.cache.entry import Record

DEFAULT_MAX_BYTES = 64 << 20


class MemoryStore:
    """Least recently used records go first when a new one would take the total over `max_bytes`.

    A record larger than an eighth of the store is not kept (one response must not flush everything else).
    Expired records are dropped when read, and pushed out by newer ones otherwise. All methods are coroutines
    only so that the store and RedisCacheStore share one interface; none of them awaits anything.
    """

    shared = False

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, clock: Callable[[], float] = time.time) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._items: OrderedDict[str, tuple[Record, float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> Record | None:
        item = self._items.get(key)
        if item is None:
            return None
        record, expires_at, size = item
        if expires_at <= self.clock():
            del self._items[key]
            self.bytes -= size
            return None
        self._items.move_to_end(key)
        return record

    async def set(self, key: str, record: Record, ttl_s: float) -> bool:
        size = record.size()
        if size > self.max_bytes // 8 or ttl_s <= 0:
            return False
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[2]
        self._items[key] = (record, self.clock() + ttl_s, size)
        self.bytes += size
        while self.bytes > self.max_bytes and self._items:
            _, (_, _, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted
        return True

    async def purge(self, route: str | None = None, url: str | None = None) -> int:
        """Remove every record (no arguments), a route's records, or one URL key's (base, variants, Vary spec)."""
        if route is None and url is None:
            count = len(self._items)
            self._items.clear()
            self.bytes = 0
            return count
        doomed = [key for key, (record, _, _) in self._items.items()
                  if (route is None or record.route == route) and (url is None or record.url == url)]
        for key in doomed:
            self.bytes -= self._items.pop(key)[2]
        return len(doomed)

    async def aclose(self) -> None:
        self._items.clear()
        self.bytes = 0
