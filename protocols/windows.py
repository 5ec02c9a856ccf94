"""Two counters over a rolling time window, kept in buckets: failure ratios for breakers, budgets for retries."""
from __future__ import annotations

BUCKETS = 10


class RollingCounts:
    """`total` and `marked` events over the last `window` seconds (to within one bucket, window / 10).

    The current bucket is two plain integers, so counting an event is a comparison and an add; finished buckets
    move into the ring only when time has passed the current one. The clock is the caller's: every method takes
    `now`, so tests drive it by hand.
    """

    __slots__ = ("window", "width", "current", "current_marked", "bucket_end", "_done", "_done_marked",
                 "_totals", "_marks", "_index")

    def __init__(self, window: float, now: float = 0.0) -> None:
        self.window = window
        self.width = window / BUCKETS
        self.current = 0  # events in the current bucket
        self.current_marked = 0
        self.bucket_end = now + self.width
        self._done = 0  # events in the finished buckets still inside the window
        self._done_marked = 0
        self._totals = [0] * BUCKETS
        self._marks = [0] * BUCKETS
        self._index = 0

    @property
    def total(self) -> int:
        return self._done + self.current

    @property
    def marked(self) -> int:
        return self._done_marked + self.current_marked

    def add(self, now: float, marked: bool = False) -> None:
        """Count one event (and one marked event when `marked`)."""
        if now >= self.bucket_end:
            self.advance(now)
        self.current += 1
        if marked:
            self.current_marked += 1

    def mark(self, now: float) -> None:
        """Count one marked event without counting it in `total` (a retry next to the requests it rides on)."""
        if now >= self.bucket_end:
            self.advance(now)
        self.current_marked += 1

    def advance(self, now: float) -> None:
        """Close the current bucket if `now` is past it, and forget the buckets that fell out of the window."""
        if now < self.bucket_end:
            return
        steps = int((now - self.bucket_end) / self.width) + 1
        self.bucket_end += steps * self.width
        totals, marks = self._totals, self._marks
        index = self._index
        totals[index] = self.current
        marks[index] = self.current_marked
        self._done += self.current
        self._done_marked += self.current_marked
        self.current = self.current_marked = 0
        if steps >= BUCKETS:
            self.reset()
            return
        for _ in range(steps):
            index = (index + 1) % BUCKETS
            self._done -= totals[index]
            self._done_marked -= marks[index]
            totals[index] = marks[index] = 0
        self._index = index

    def reset(self) -> None:
        self._totals = [0] * BUCKETS
        self._marks = [0] * BUCKETS
        self.current = self.current_marked = self._done = self._done_marked = 0
