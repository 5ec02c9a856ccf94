"""What a rule finds: the finding with its evidence and its draft, and the helpers rules share to write them."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEVERITIES = ("critical", "warning", "info")


@dataclass
class Finding:
    """One piece of advice about one route (`route` "" for the whole gateway).

    `evidence` holds the figures the rule read, the time range, the series and a link to the dashboard page
    (`evidence()` builds it); `patch` the route fields the draft changes (None: advice without a draft); `fields`
    the route fields this rule's drafts may change, which bounds an LLM's draft too.
    """

    rule: str
    route: str
    severity: str
    text: str
    evidence: dict[str, Any]
    patch: dict[str, Any] | None = None
    fields: tuple[str, ...] = ()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def evidence(figures: dict[str, Any], start: datetime, end: datetime, series: list[str],
             dashboard: str) -> dict[str, Any]:
    return {"figures": figures, "range": {"start": iso(start), "end": iso(end)}, "series": series,
            "dashboard": dashboard}


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds to a tenth, for the evidence."""
    return None if seconds is None else round(seconds * 1000, 1)


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (at least 1): a figure a
    person would write in a configuration, stable when the measurement moves a little."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * power
        if candidate >= value - 1e-9:
            return int(math.ceil(candidate))
    return int(10 * power)  # not reached


def share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0
