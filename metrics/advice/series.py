"""Reading the stored series for the advice rules: traffic per (route, backend) in buckets of an hour or five
minutes, and per-client request rates (the abuse block's client windows, else the consumers' points)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Sum

from metrics.aggregates import Agg, SeriesKey
from metrics.models import ClientWindow, FillState
from metrics.queries import floor
from metrics.rollups import consumer_rows, source_rows

# Each step reads the coarsest resolution not longer than itself, then the finer ones past its fill marker.
CHAINS = {3600: ("1h", "5m", "1m"), 300: ("5m", "1m")}
Buckets = dict[SeriesKey, dict[datetime, Agg]]


def bucketed(start: datetime, end: datetime, step: int) -> Buckets:
    """Each (route, backend)'s traffic over [start, end) in buckets of `step` seconds (3600 or 300).

    Rolled-up rows are read up to their resolution's fill marker, the next finer resolution from there on and the
    raw points last: the markers separate them, so no point is counted twice, and the figures of the last
    minutes (not rolled up yet) are there too.
    """
    markers = dict(FillState.objects.values_list("resolution", "filled_until"))
    out: Buckets = defaultdict(lambda: defaultdict(Agg))
    cursor = start
    for resolution in CHAINS[step]:
        until = min(markers.get(resolution) or cursor, end)
        if until > cursor:
            _read(out, resolution, cursor, until, step)
            cursor = until
    if cursor < end:
        _read(out, "10s", cursor, end, step)
    return {key: dict(points) for key, points in out.items()}


def _read(out: Buckets, resolution: str, start: datetime, end: datetime, step: int) -> None:
    rows = source_rows(resolution).filter(start__gte=start, start__lt=end)
    for row in rows.iterator(chunk_size=2000):
        out[(row.route, row.backend)][floor(row.start, step)].merge(Agg.from_row(row))


def client_rates(start: datetime, end: datetime) -> dict[str, dict[str, list[float]]]:
    """route -> client -> its request rates (per second), one per window it sent requests in, from the abuse
    block's client windows (the processes' rows of one window summed by the database)."""
    rows = (ClientWindow.objects.filter(start__gte=start, start__lt=end)
            .values_list("route", "client", "start", "window_s").annotate(sent=Sum("requests")))
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for route, client, _at, window_s, sent in rows.iterator(chunk_size=5000):
        if sent:
            out[route][client].append(sent / (window_s or 10.0))
    return {route: dict(clients) for route, clients in out.items()}


def consumer_rates(start: datetime, end: datetime) -> dict[str, dict[str, list[float]]]:
    """route -> `consumer:<name>` -> its request rates per 10-second point (the consumers' raw points)."""
    points: dict[tuple[str, str, datetime], int] = defaultdict(int)
    rows = consumer_rows("10s").filter(start__gte=start, start__lt=end).exclude(route="").values_list(
        "route", "consumer", "start", "count")
    for route, consumer, at, count in rows.iterator(chunk_size=5000):
        points[(route, consumer, at)] += count
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (route, consumer, _at), count in points.items():
        if count:
            out[route][f"consumer:{consumer}"].append(count / 10.0)
    return {route: dict(clients) for route, clients in out.items()}
