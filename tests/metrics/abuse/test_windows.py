"""ClientWindow rows: written from closed windows with an upsert that a retry cannot double, and merged over the
processes that wrote them."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metrics.abuse.windows import MAX_PATH_HASHES, merge_windows, value_hash, write_windows
from metrics.models import ClientWindow
from protocols.abuse.counters import AbuseCounters
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db
START = 1_700_000_000.0


def closed_window(requests: list[tuple[str, int, str, str | None]], client: str = "sub:alice"):
    """A window of these (route, status, path, address) requests by `client`, as the flusher takes it."""
    counters = AbuseCounters(Recorder(), window_s=10, clock=lambda: START)
    for route, status, path, address in requests:
        counters.record(route, client, status, 5, 50, path, address)
    window = counters.take(START + 10)
    assert window is not None
    return window


def test_a_window_becomes_one_row_per_route_and_client_with_its_counts():
    window = closed_window([("orders", 200, "/a", "10.0.0.1"), ("orders", 401, "/b", "10.0.0.2"),
                            ("orders", 404, "/b", "10.0.0.2")])
    assert write_windows([window], "host:1:1") == 1
    row = ClientWindow.objects.get()
    assert (row.start, row.window_s, row.route, row.client, row.source) == (
        datetime.fromtimestamp(START, UTC), 10, "orders", "sub:alice", "host:1:1")
    assert (row.requests, row.errors_4xx, row.auth_failures, row.not_found) == (3, 2, 1, 1)
    assert (row.bytes_in, row.bytes_out) == (15, 150)
    assert row.distinct_paths == 2 and row.path_hashes == sorted([value_hash("/a"), value_hash("/b")])
    assert row.distinct_addresses == 2 and len(row.address_hashes) == 2


def test_writing_the_same_window_again_replaces_its_row_instead_of_adding_to_it():
    window = closed_window([("orders", 200, "/a", None)] * 4)
    write_windows([window], "host:1:1")
    write_windows([window], "host:1:1")  # the flusher's retry after a failure it could not see
    assert list(ClientWindow.objects.values_list("requests", flat=True)) == [4]


def test_many_paths_keep_their_exact_count_and_the_smallest_hashes():
    paths = [f"/items/{index}" for index in range(200)]
    write_windows([closed_window([("orders", 404, path, None) for path in paths])], "host:1:1")
    row = ClientWindow.objects.get()
    assert row.distinct_paths == 200
    assert row.path_hashes == sorted(value_hash(path) for path in paths)[:MAX_PATH_HASHES]


def test_two_processes_rows_merge_into_one_window():
    write_windows([closed_window([("orders", 200, "/a", "10.0.0.1"), ("orders", 200, "/b", "10.0.0.1")])], "one")
    write_windows([closed_window([("orders", 401, "/b", "10.0.0.2"), ("orders", 200, "/c", "10.0.0.3")])], "two")
    (merged,) = merge_windows(ClientWindow.objects.all()).values()
    assert merged.sources == 2
    assert merged.counts["requests"] == 4 and merged.counts["auth_failures"] == 1
    assert merged.distinct_paths == 3  # /b counted by both
    assert merged.distinct_addresses == 3
    assert merged.as_dict()["client"] == "sub:alice"
