"""Traffic aggregates of one series over one bucket, as plain data: built from recorder windows, merged, summed
over series and resolutions, and read back as averages and quantiles. No I/O."""
from __future__ import annotations

from typing import Any

from protocols.recorder import (
    BUCKETS,
    BYTES_IN,
    BYTES_OUT,
    CONSUMER_BUCKETS,
    CONSUMER_COUNT,
    CONSUMER_MAX,
    CONSUMER_MIN,
    CONSUMER_SUM,
    COUNT,
    DURATION_BUCKETS,
    DURATION_MAX,
    DURATION_MIN,
    DURATION_SUM,
    LATENCY_BOUNDS,
    ConsumerKey,
    WindowKey,
)

SeriesKey = tuple[str, str]  # route, backend
FIELDS = ("count", "errors_4xx", "errors_5xx", "errors_gateway", "duration_sum", "duration_min", "duration_max",
          "bytes_in", "bytes_out", "buckets")
ConsumerSeriesKey = tuple[str, str]  # consumer, route
# What a consumer's point keeps: no backend, bytes or gateway errors (the recorder's consumer cell has none).
CONSUMER_FIELDS = ("count", "errors_4xx", "errors_5xx", "duration_sum", "duration_min", "duration_max", "buckets")


class Agg:
    """count, errors by class, duration sum/min/max, bytes and latency bucket counts of one series and bucket."""

    __slots__ = FIELDS

    def __init__(self) -> None:
        self.count = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.errors_gateway = 0
        self.duration_sum = 0.0
        self.duration_min: float | None = None
        self.duration_max: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.buckets = [0] * BUCKETS

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.errors_gateway += other.errors_gateway
        self.duration_sum += other.duration_sum
        if other.duration_min is not None and (self.duration_min is None or other.duration_min < self.duration_min):
            self.duration_min = other.duration_min
        if other.duration_max is not None and (self.duration_max is None or other.duration_max > self.duration_max):
            self.duration_max = other.duration_max
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        for index, value in enumerate(other.buckets[:BUCKETS]):
            self.buckets[index] += value

    def add_requests(self, status: int, count: int, total: float, low: float, high: float, cell: list[Any],
                     buckets_at: int) -> None:
        """`count` requests of one status from a recorder cell: their time (sum, min, max) and the latency
        buckets that start at `cell[buckets_at]`."""
        self.count += count
        if 400 <= status < 500:
            self.errors_4xx += count
        elif status >= 500:
            self.errors_5xx += count
        self.duration_sum += total
        if self.duration_min is None or low < self.duration_min:
            self.duration_min = low
        if self.duration_max is None or high > self.duration_max:
            self.duration_max = high
        buckets = self.buckets
        for index in range(BUCKETS):
            buckets[index] += cell[buckets_at + index]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def consumer_dict(self) -> dict[str, Any]:
        """The figures a consumer's point keeps (CONSUMER_FIELDS)."""
        return {name: getattr(self, name) for name in CONSUMER_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Agg:
        agg = cls()
        for name in FIELDS:
            if name in data:
                setattr(agg, name, data[name])
        agg.buckets = list(agg.buckets) + [0] * (BUCKETS - len(agg.buckets))
        return agg

    @classmethod
    def from_row(cls, row: Any) -> Agg:
        """From a RawPoint or RollupPoint (or anything with the same attributes)."""
        return cls.from_dict({name: getattr(row, name) for name in FIELDS})

    @classmethod
    def from_consumer_row(cls, row: Any) -> Agg:
        """From a ConsumerRawPoint or ConsumerRollupPoint (the figures it has; the others stay 0)."""
        return cls.from_dict({name: getattr(row, name) for name in CONSUMER_FIELDS})

    # --- Reading -------------------------------------------------------------------------------------------

    @property
    def errors(self) -> int:
        """Failed requests: 5xx answers (the gateway's own errors are 5xx too)."""
        return self.errors_5xx

    def average(self) -> float | None:
        return self.duration_sum / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the durations, interpolated inside its bucket and kept within [min, max]."""
        total = sum(self.buckets)
        if not total:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                lower = LATENCY_BOUNDS[index - 1] if index > 0 else 0.0
                upper = LATENCY_BOUNDS[index] if index < len(LATENCY_BOUNDS) else (self.duration_max or lower)
                value = lower + (upper - lower) * max(0.0, rank - seen) / count
                if self.duration_min is not None:
                    value = max(value, self.duration_min)
                if self.duration_max is not None:
                    value = min(value, self.duration_max)
                return value
            seen += count
        return self.duration_max


def from_window(window: dict[WindowKey, list[Any]]) -> dict[SeriesKey, Agg]:
    """A recorder window (protocols.recorder) as one aggregate per (route, backend)."""
    result: dict[SeriesKey, Agg] = {}
    for (route, _method, status, backend, error), cell in window.items():
        key = (route, backend)
        agg = result.get(key)
        if agg is None:
            agg = result[key] = Agg()
        agg.add_requests(status, cell[COUNT], cell[DURATION_SUM], cell[DURATION_MIN], cell[DURATION_MAX],
                         cell, DURATION_BUCKETS)
        if error:
            agg.errors_gateway += cell[COUNT]
        agg.bytes_in += cell[BYTES_IN]
        agg.bytes_out += cell[BYTES_OUT]
    return result


def from_consumer_window(window: dict[ConsumerKey, list[Any]]) -> dict[ConsumerSeriesKey, Agg]:
    """A recorder's consumer window as one aggregate per (consumer, route)."""
    result: dict[ConsumerSeriesKey, Agg] = {}
    for (consumer, route, status), cell in window.items():
        key = (consumer, route)
        agg = result.get(key)
        if agg is None:
            agg = result[key] = Agg()
        agg.add_requests(status, cell[CONSUMER_COUNT], cell[CONSUMER_SUM], cell[CONSUMER_MIN], cell[CONSUMER_MAX],
                         cell, CONSUMER_BUCKETS)
    return result
