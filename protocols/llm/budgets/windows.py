"""Fixed windows on the UTC calendar (minute, day, ISO week, month): where a moment's window starts and ends."""
from __future__ import annotations

import calendar
import datetime as dt

MINUTE = "minute"
DAY = "day"
WEEK = "week"
MONTH = "month"
PERIODS = (MINUTE, DAY, WEEK, MONTH)
# Windows this long or longer are worth keeping across a restart (exported and seeded); a minute is not.
PERSISTED = frozenset({DAY, WEEK, MONTH})

_EPOCH_MONDAY = 4 * 86_400  # 1970-01-01 was a Thursday: the first Monday 00:00 UTC is 4 days later


def window(period: str, now: float) -> tuple[int, int]:
    """(start, end) in whole epoch seconds of the `period` window holding `now` (epoch seconds, UTC).

    Windows are aligned to the calendar so that every process computes the same boundaries from its own clock:
    a minute starts at :00, a day at 00:00 UTC, a week on Monday 00:00 UTC (ISO), a month on its 1st 00:00 UTC.
    """
    second = int(now // 1)
    if period == MINUTE:
        start = second - second % 60
        return start, start + 60
    if period == DAY:
        start = second - second % 86_400
        return start, start + 86_400
    if period == WEEK:
        start = second - (second - _EPOCH_MONDAY) % 604_800
        return start, start + 604_800
    if period == MONTH:
        day = dt.datetime.fromtimestamp(second, dt.UTC)
        start = calendar.timegm((day.year, day.month, 1, 0, 0, 0))
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return start, calendar.timegm((year, month, 1, 0, 0, 0))
    raise ValueError(f"unknown period {period!r}")
