"""Reading the LLM spend history: cost and tokens over time (per consumer, model or route), and who spent what.

Costs are stored in integer micro-units of each route's budget currency and summed as integers, so what the API
answers is exact: `cost` is a decimal string in currency units ("0.0043"), `cost_micros` the same integer. A
series (`spend_points`) reads the points of the chosen resolution, as the history API does; the summary
(`spend_summary`) reads a range from the coarsest filled resolutions (metrics.consumer_queries.cover), so a month
costs about as few rows as an hour and no point is counted twice.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metrics.consumer_queries import cover
from metrics.llm_points import add_into, figures_of, spend_rows
from metrics.models import FillState
from metrics.queries import PointRange
from protocols.llm.budgets.money import format_micros
from protocols.llm.metrics import WINDOW_FIELDS

# A series can be split by one of these (each point of each part summed over the rest).
SPLITS = ("consumer", "model", "route")


@dataclass(frozen=True)
class SpendQuery(PointRange):
    interval: str
    start: datetime
    end: datetime
    route: str | None = None
    model: str | None = None
    consumer: str | None = None
    by: str | None = None


def figures(cell: list[int]) -> dict[str, Any]:
    """A sum of points as the API writes it: requests, tokens by kind, cost (exact decimal string) and micros."""
    requests, input_tokens, output_tokens, cached_input_tokens, micros = cell
    return {"requests": requests, "input_tokens": input_tokens, "output_tokens": output_tokens,
            "cached_input_tokens": cached_input_tokens, "cost": format_micros(micros), "cost_micros": micros}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def spend_points(query: SpendQuery) -> dict[str, Any]:
    """The buckets of the range that have spend, oldest first: `points` (everything that matches the filters)
    and, with `by`, `series`: one list of points per consumer, model or route, most expensive first."""
    rows = spend_rows(query.interval).filter(start__gte=query.start, start__lt=query.end)
    for name in ("route", "model", "consumer"):
        value = getattr(query, name)
        if value is not None:
            rows = rows.filter(**{name: value})
    empty = [0] * len(WINDOW_FIELDS)
    totals: dict[datetime, list[int]] = defaultdict(lambda: list(empty))
    parts: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: list(empty)))
    for row in rows.order_by("start").iterator(chunk_size=2000):
        cell = figures_of(row)
        add_into(totals[row.start], cell)
        if query.by is not None:
            add_into(parts[getattr(row, query.by)][row.start], cell)
    body: dict[str, Any] = {"points": [{"t": _iso(start), **figures(cell)} for start, cell in sorted(totals.items())]}
    if query.by is not None:
        costs = {name: sum(cell[-1] for cell in buckets.values()) for name, buckets in parts.items()}
        body["series"] = [
            {query.by: name, "cost": format_micros(costs[name]), "cost_micros": costs[name],
             "points": [{"t": _iso(start), **figures(cell)} for start, cell in sorted(parts[name].items())]}
            for name in sorted(parts, key=lambda name: (-costs[name], name))
        ]
    return body


def spend_summary(start: datetime, end: datetime) -> dict[str, Any]:
    """Per (consumer, model) over [start, end): requests, tokens and cost, most expensive first; and the total."""
    markers = dict(FillState.objects.values_list("resolution", "filled_until"))
    empty = [0] * len(WINDOW_FIELDS)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: list(empty))
    for resolution, low, high in cover(start, end, markers):
        for row in spend_rows(resolution).filter(start__gte=low, start__lt=high).iterator(chunk_size=2000):
            add_into(totals[(row.consumer, row.model)], figures_of(row))
    whole = list(empty)
    for cell in totals.values():
        add_into(whole, cell)
    ordered = sorted(totals.items(), key=lambda item: (-item[1][-1], -item[1][0], item[0]))
    return {"rows": [{"consumer": consumer, "model": model, **figures(cell)} for (consumer, model), cell in ordered],
            "total": figures(whole)}
