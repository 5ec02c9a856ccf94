"""ClientWindow rows: what the abuse counters of one gateway process counted in one window, written with an upsert,
and `merge_windows`, which adds up several processes' rows of the same window for the detection task.

A process writes each closed window once, and again only when that write failed: the upsert replaces its own row
of (start, route, client, source), so a retried write never counts twice. The path and address sets become their
hashes here, in the flusher's thread: the 64 (paths) and 32 (addresses) smallest 16-hex-digit BLAKE2b hashes,
sorted, with the exact count beside them. Keeping the smallest hashes (a bottom-k sketch) makes the lists of
several processes mergeable: their union, cut to the same size, is the sketch of the union.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from metrics.models import ClientWindow
from protocols.abuse.counters import (
    ADDRESSES,
    AUTH_FAILURES,
    BYTES_IN,
    BYTES_OUT,
    ERRORS_4XX,
    NOT_FOUND,
    PATHS,
    RATE_LIMITED,
    REQUESTS,
    ClosedWindow,
)

MAX_PATH_HASHES = 64
MAX_ADDRESS_HASHES = 32
COUNTS = ("requests", "errors_4xx", "auth_failures", "not_found", "rate_limited", "bytes_in", "bytes_out")
_CELL_INDEX = (REQUESTS, ERRORS_4XX, AUTH_FAILURES, NOT_FOUND, RATE_LIMITED, BYTES_IN, BYTES_OUT)
UPDATED = ("window_s", *COUNTS, "distinct_paths", "path_hashes", "distinct_addresses", "address_hashes")


def value_hash(value: str) -> str:
    """The stable hash of a path or an address that rows carry (the same in every process)."""
    return hashlib.blake2b(value.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def smallest_hashes(values: Iterable[str], cap: int) -> list[str]:
    """The `cap` smallest hashes of `values`, sorted."""
    return sorted(value_hash(value) for value in values)[:cap]


def rows_of(window: ClosedWindow, source: str) -> list[ClientWindow]:
    """The rows of one closed window, as `source` writes them."""
    start = datetime.fromtimestamp(window.start, UTC)
    rows = []
    for (route, client), cell in window.cells.items():
        paths, addresses = cell[PATHS], cell[ADDRESSES]
        rows.append(ClientWindow(
            start=start, window_s=window.window_s, route=route, client=client, source=source,
            **{name: cell[index] for name, index in zip(COUNTS, _CELL_INDEX, strict=True)},
            distinct_paths=len(paths), path_hashes=smallest_hashes(paths, MAX_PATH_HASHES),
            distinct_addresses=len(addresses), address_hashes=smallest_hashes(addresses, MAX_ADDRESS_HASHES)))
    return rows


def write_windows(windows: Iterable[ClosedWindow], source: str) -> int:
    """Upsert the rows of these windows (replacing `source`'s own rows of them); returns how many rows."""
    rows = [row for window in windows for row in rows_of(window, source)]
    if rows:
        ClientWindow.objects.bulk_create(rows, batch_size=500, update_conflicts=True,
                                         unique_fields=["start", "route", "client", "source"],
                                         update_fields=list(UPDATED))
    return len(rows)


@dataclass
class MergedWindow:
    """One client's window on one route over every process that counted it (see `merge_windows`)."""

    start: datetime
    window_s: float
    route: str
    client: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    distinct_paths: int = 0
    path_hashes: list[str] = field(default_factory=list)
    distinct_addresses: int = 0
    address_hashes: list[str] = field(default_factory=list)
    sources: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "window_s": self.window_s, "route": self.route, "client": self.client,
                **self.counts, "distinct_paths": self.distinct_paths, "path_hashes": self.path_hashes,
                "distinct_addresses": self.distinct_addresses, "address_hashes": self.address_hashes,
                "sources": self.sources}


def merge_windows(rows: Iterable[ClientWindow]) -> dict[tuple[datetime, str, str], MergedWindow]:
    """Several processes' rows added up per (start, route, client): counts summed; distinct paths and addresses
    the larger of each process's exact count and the size of the union of their hashes (exact when every row's
    list is whole, its count within the cap; a lower bound otherwise); the hash lists merged and cut again to
    their cap."""
    merged: dict[tuple[datetime, str, str], MergedWindow] = {}
    for row in rows:
        key = (row.start, row.route, row.client)
        window = merged.get(key)
        if window is None:
            window = merged[key] = MergedWindow(row.start, row.window_s, row.route, row.client)
        for name in COUNTS:
            window.counts[name] += getattr(row, name)
        window.sources += 1
        union = set(window.path_hashes).union(row.path_hashes)
        window.distinct_paths = max(window.distinct_paths, row.distinct_paths, len(union))
        window.path_hashes = sorted(union)[:MAX_PATH_HASHES]
        union = set(window.address_hashes).union(row.address_hashes)
        window.distinct_addresses = max(window.distinct_addresses, row.distinct_addresses, len(union))
        window.address_hashes = sorted(union)[:MAX_ADDRESS_HASHES]
    return merged
