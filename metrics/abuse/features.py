"""The features of each (route, client, window): the gateway processes' ClientWindow rows of one window merged
(metrics.abuse.windows), and the figures the detection compares (metrics.abuse.scoring)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics.abuse.windows import COUNTS, merge_windows

# The ClientWindow columns the detection reads (a values_list keeps the fetch light).
COLUMNS = ("start", "window_s", "route", "client", *COUNTS, "distinct_paths", "path_hashes", "distinct_addresses",
           "address_hashes")
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


# The figures compared with baselines, each a count per window (so the overdispersed-Poisson scores of
# metrics.abuse.scoring apply), and `error_ratio` for the isolation forest.
FEATURES = ("requests", "auth_failures", "not_found", "distinct_paths", "kilobytes", "distinct_addresses")


def merge_rows(rows: Iterable[Any]) -> dict[str, list[ClientWindowFeatures]]:
    """Rows of one route (ClientWindow objects or `values_list(*COLUMNS, named=True)` rows, any number of
    writers) -> each client's windows, oldest first, merged by the data plane's own rule
    (metrics.abuse.windows.merge_windows: counts added, distinct paths and addresses from the union of hashes)."""
    by_client: dict[str, list[ClientWindowFeatures]] = {}
    for merged in merge_windows(rows).values():
        counts = merged.counts
        by_client.setdefault(merged.client, []).append(ClientWindowFeatures(
            start=merged.start, window_s=float(merged.window_s), client=merged.client, requests=counts["requests"],
            errors_4xx=counts["errors_4xx"], auth_failures=counts["auth_failures"], not_found=counts["not_found"],
            bytes=counts["bytes_in"] + counts["bytes_out"], distinct_paths=merged.distinct_paths,
            distinct_addresses=merged.distinct_addresses, sources=merged.sources))
    for windows in by_client.values():
        windows.sort(key=lambda w: w.start)
    return by_client
