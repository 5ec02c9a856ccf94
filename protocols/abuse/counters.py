"""What each client does on each route with an `abuse` block, counted per window in this process, bounded.

The proxy calls `AbuseCounters.record` once per finished request of such a route (beside the metrics recorder,
so that refused requests count too): one dict lookup, a few additions and one or two set insertions. Routes
without the block pay nothing: the proxy only calls it when the route's plan has one.

A client is one string (`client_identity`): `consumer:<name>` when the request's API key or JWT subject
resolved to a consumer, else `sub:<JWT subject>`, else `key:<short SHA-256 of the API key>` when a key was
presented (a key the gateway does not check, passed to a backend that does), else `ip:<client address>` (behind
trusted proxies, the address the proxy resolved from X-Forwarded-For). A request answered 401 or 403 without a
consumer or subject counts for its address: a refused credential names nobody, and a client trying many keys is
one client with many failures.

Windows are aligned on `window_s` wall-clock seconds; the worker's flusher (metrics.flusher, on the event loop)
calls `take` once a second, which hands over the window once its end has passed, and its thread turns the
window into ClientWindow rows (metrics.abuse.windows): the path and address sets are hashed there, off the loop.
At most `max_clients` (route, client) pairs are kept per window: past that, a new client is counted under the
client `overflow` of its route, and the recorder's `abuse_overflow` says how many requests were.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from protocols.auth.consumers import presented_key
from protocols.recorder import Recorder

OVERFLOW = "overflow"
# Where each figure lives in a window cell (a flat list: cheaper to update than an object). PATHS and ADDRESSES
# are sets of the clean paths and, for a client named by a credential, of the addresses it came from.
REQUESTS, ERRORS_4XX, AUTH_FAILURES, NOT_FOUND, RATE_LIMITED, BYTES_IN, BYTES_OUT, PATHS, ADDRESSES = range(9)
# The share of a key's SHA-256 a `key:` client is named by: enough to tell keys apart, useless to a reader.
KEY_HASH_CHARS = 16

ClientKey = tuple[str, str]  # route, client


def client_identity(consumer: str | None, subject: str | None, headers: Iterable[tuple[bytes, bytes]],
                    client_ip: str) -> str:
    """The client a request counts for (see the module docstring)."""
    if consumer:
        return "consumer:" + consumer
    if subject:
        return "sub:" + subject
    return anonymous_identity(headers, client_ip)


def anonymous_identity(headers: Iterable[tuple[bytes, bytes]], client_ip: str) -> str:
    """The client of a request without a consumer or subject: its API key when it presented one, else its
    address."""
    key, _authorization = presented_key(headers)
    if key:
        return "key:" + hashlib.sha256(key).hexdigest()[:KEY_HASH_CHARS]
    return "ip:" + client_ip


def window_start(now: float, window_s: float) -> float:
    """The start of the aligned window `now` falls in."""
    return now - now % window_s


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One window handed over by `take`: its start (Unix seconds), length, and cells by (route, client)."""

    start: float
    window_s: float
    cells: dict[ClientKey, list[Any]]


class AbuseCounters:
    """This process's per-(route, client) counters (see the module docstring). Used from the event loop only."""

    def __init__(self, recorder: Recorder, *, window_s: float = 10.0, max_clients: int = 50_000,
                 clock: Callable[[], float] = time.time) -> None:
        if window_s < 1:
            raise ValueError("an abuse window is at least 1 second long")
        self.recorder = recorder
        self.window_s = window_s
        self.max_clients = max_clients
        self.clock = clock
        self.cells: dict[ClientKey, list[Any]] = {}
        self.start = window_start(clock(), window_s)

    def record(self, route: str, client: str, status: int, bytes_in: int, bytes_out: int, path: str,
               address: str | None) -> None:
        """One finished request of `client` on `route`; `address` the client address when the client is named by
        a credential (None for an `ip:` client, whose address is its name)."""
        key = (route, client)
        cells = self.cells
        cell = cells.get(key)
        if cell is None:
            if len(cells) >= self.max_clients:
                self.recorder.abuse_overflow(route)
                key = (route, OVERFLOW)
                cell = cells.get(key)
            if cell is None:
                cell = cells[key] = [0, 0, 0, 0, 0, 0, 0, set(), set()]
        cell[REQUESTS] += 1
        if 400 <= status < 500:
            cell[ERRORS_4XX] += 1
            if status == 401 or status == 403:
                cell[AUTH_FAILURES] += 1
            elif status == 404:
                cell[NOT_FOUND] += 1
            elif status == 429:
                cell[RATE_LIMITED] += 1
        cell[BYTES_IN] += bytes_in
        cell[BYTES_OUT] += bytes_out
        cell[PATHS].add(path)
        if address is not None:
            cell[ADDRESSES].add(address)

    def take(self, now: float | None = None, *, final: bool = False) -> ClosedWindow | None:
        """The current window once it has ended (or now, when `final`: the process stops), a new one starting;
        None while it runs on, or when it counted nothing."""
        now = self.clock() if now is None else now
        if not final and now < self.start + self.window_s:
            return None
        cells, self.cells = self.cells, {}
        closed = ClosedWindow(self.start, self.window_s, cells)
        self.start = window_start(now, self.window_s)
        return closed if cells else None
