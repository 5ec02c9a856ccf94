"""The features of each (route, client, window): the gateway processes' ClientWindow rows of one window merged, and
the figures the detection compares (metrics.abuse.scoring)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The ClientWindow columns the detection reads, in this order (values_list keeps the fetch light).
COLUMNS = ("start", "window_s", "client", "requests", "errors_4xx", "auth_failures", "not_found", "bytes_in",
           "bytes_out", "distinct_paths", "path_hashes", "distinct_addresses", "address_hashes")
# Clients named by a credential (a consumer, a JWT subject, an API key) rather than by their address: only they can
# be shared between addresses.
CREDENTIAL_PREFIXES = ("consumer:", "sub:", "key:")


def is_credential(client: str) -> bool:
    return client.startswith(CREDENTIAL_PREFIXES)


@dataclass(slots=True)
class ClientWindowFeatures:
    """One client's window on one route, every writer's row added up."""

    start: datetime
    window_s: float
    client: str
    requests: int = 0
    errors_4xx: int = 0
    auth_failures: int = 0
    not_found: int = 0
    bytes: int = 0
    distinct_paths: int = 0
    distinct_addresses: int = 0
    path_hashes: set[Any] = field(default_factory=set)
    address_hashes: set[Any] = field(default_factory=set)
    sources: int = 0

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.window_s if self.window_s else 0.0

    @property
    def error_ratio(self) -> float:
        return self.errors_4xx / self.requests if self.requests else 0.0

    @property
    def ok_ratio(self) -> float:
        """The share of answers that were not 4xx (the gateway counts no 2xx of its own)."""
        return 1.0 - self.error_ratio

    @property
    def kilobytes(self) -> float:
        """Bytes in and out, in thousands: a scale on which a page's worth is a unit, as requests are."""
        return self.bytes / 1000.0

    def figure(self, name: str) -> float:
        """A feature by name (FEATURES)."""
        return float(getattr(self, name))

    def add(self, row: Sequence[Any]) -> None:
        """Fold one writer's row in: counters add up; distinct paths and addresses are the larger of the union of
        the writers' hashes and the largest exact count (hash lists are capped, exact counts are not)."""
        (_, _, _, requests, errors_4xx, auth_failures, not_found, bytes_in, bytes_out, distinct_paths, path_hashes,
         distinct_addresses, address_hashes) = row
        self.requests += requests
        self.errors_4xx += errors_4xx
        self.auth_failures += auth_failures
        self.not_found += not_found
        self.bytes += bytes_in + bytes_out
        self.path_hashes.update(_hashable(path_hashes))
        self.address_hashes.update(_hashable(address_hashes))
        self.distinct_paths = max(self.distinct_paths, distinct_paths, len(self.path_hashes))
        self.distinct_addresses = max(self.distinct_addresses, distinct_addresses, len(self.address_hashes))
        self.sources += 1


# The figures compared with baselines, each a count per window (so the overdispersed-Poisson scores of
# metrics.abuse.scoring apply), and `error_ratio` for the isolation forest.
FEATURES = ("requests", "auth_failures", "not_found", "distinct_paths", "kilobytes", "distinct_addresses")


def _hashable(values: Any) -> Iterable[Any]:
    return (tuple(value) if isinstance(value, list) else value for value in values or ())


def merge_rows(rows: Iterable[Sequence[Any]]) -> dict[str, list[ClientWindowFeatures]]:
    """Rows (COLUMNS, any order, any number of writers) -> each client's windows, oldest first."""
    merged: dict[tuple[datetime, str], ClientWindowFeatures] = {}
    for row in rows:
        start, window_s, client = row[0], row[1], row[2]
        key = (start, client)
        features = merged.get(key)
        if features is None:
            features = merged[key] = ClientWindowFeatures(start=start, window_s=float(window_s), client=client)
        features.add(row)
    by_client: dict[str, list[ClientWindowFeatures]] = {}
    for features in merged.values():
        by_client.setdefault(features.client, []).append(features)
    for windows in by_client.values():
        windows.sort(key=lambda w: w.start)
    return by_client
