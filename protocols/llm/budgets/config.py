"""BudgetPolicy: compiled token limits and money budgets, and the counters one request spends from (its plan).

A counter's key (what the stores, refusals and exports name) is `<policy>|<meter>|<scope>`:
- `<policy>`: the policy's name, e.g. `global` (gateway-wide settings) or `route:chat` (a route's own block), so
  a route's limits never share counters with another route's or with the gateway-wide ones;
- `<meter>`: `tokens:minute`, `tokens:day` or `money:<currency>:<period>` (`money:USD:month`);
- `<scope>`: the `per` parts in the order consumer, route, model (`consumer=alice|model=gpt-4o`), or `all` when
  `per` is empty (one counter for every request the policy covers). A request without a consumer counts as
  `consumer=-` (all anonymous callers share one counter); identities longer than 64 characters or holding `|`
  are replaced by a hash.
e.g. `route:chat|tokens:minute|consumer=alice|model=gpt-4o`, `global|money:USD:month|consumer=alice`.
Amounts are not part of the key, so raising a limit or a budget keeps what was already spent in the window.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocols.block_errors import BlockError, Issues, join
from protocols.llm.budgets.money import format_micros, to_micros
from protocols.llm.budgets.windows import DAY, MINUTE, MONTH, PERIODS, PERSISTED, WEEK, window

TOKENS = "tokens"
MONEY = "money"
SCOPES = ("consumer", "route", "model")
TOKEN_LIMIT_KEYS = frozenset({"tokens_per_minute", "tokens_per_day", "per"})
BUDGET_KEYS = frozenset({"amount", "currency", "period", "per"})
POLICY_KEYS = frozenset({"token_limits", "budgets", "on_store_error"})
MAX_TOKENS = 10**12
ANONYMOUS = "-"
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_PLAIN = 64


@dataclass(frozen=True, slots=True)
class Meter:
    """One limit on one window: `limit` tokens (or micro-units of `currency`) per `period`, counted per `per`.

    `label` is what a person reads in a refusal: `tokens_per_minute`, `tokens_per_day` or `budget`; `path` is
    where it was written in its block (`token_limits[0].tokens_per_day`, `budgets[1]`).
    """

    kind: str  # TOKENS or MONEY
    period: str
    limit: int
    per: tuple[str, ...]
    label: str
    path: str
    currency: str = ""

    @property
    def meter(self) -> str:
        return f"{TOKENS}:{self.period}" if self.kind == TOKENS else f"{MONEY}:{self.currency}:{self.period}"

    def describe(self) -> str:
        """`10000 tokens per minute per consumer and model`, `25 USD per month per consumer`."""
        amount = f"{self.limit} tokens" if self.kind == TOKENS else f"{format_micros(self.limit)} {self.currency}"
        scope = f" per {' and '.join(self.per)}" if self.per else ""
        return f"{amount} per {self.period}{scope}"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking for what: the consumer (None when the route takes no credential), the route and the
    model the request is sent to; the counters a request spends from are named from these."""

    consumer: str | None
    route: str
    model: str


@dataclass(frozen=True, slots=True)
class Charge:
    """One counter a reservation spends from: its meter, its key, its window and the amount reserved in it."""

    meter: Meter
    key: str
    start: int
    end: int
    amount: int


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """The token limits and money budgets of one block (a route's, or the gateway-wide settings').

    `on_store_error`: "open" (the default, as for rate limits: while Redis is away each process counts on its
    own, from zero) or "closed" (refuse every request that a limit applies to, Retry-After 1). `currency` is the
    one currency of its budgets ("" without budgets): the caller prices requests in it.
    """

    name: str
    meters: tuple[Meter, ...]
    on_store_error: str = "open"
    currency: str = ""

    @classmethod
    def from_config(cls, block: Any, name: str = "global") -> BudgetPolicy:
        """Compile `{"token_limits": [...], "budgets": [...], "on_store_error": "open"}`; each list may also be
        a single object. Every problem is reported at its path (`token_limits[0].per[1]`)."""
        if not isinstance(block, dict):
            raise BlockError.at("", "Must be an object with token_limits and/or budgets.")
        issues = Issues()
        for key in sorted(set(block) - POLICY_KEYS):
            issues.add(key, f"Unknown key; known: {', '.join(sorted(POLICY_KEYS))}.")
        meters: list[Meter] = []
        for key, compiler in (("token_limits", compile_token_limits), ("budgets", compile_budgets)):
            if key in block:
                try:
                    meters.extend(compiler(block[key], key))
                except BlockError as exc:
                    for path, messages in exc.errors.items():
                        for message in messages:
                            issues.add(path, message)
        on_store_error = block.get("on_store_error", "open")
        if on_store_error not in ("open", "closed"):
            issues.add("on_store_error", "Must be open or closed.")
        issues.raise_if_any()
        return cls.of(meters, name=name, on_store_error=str(on_store_error))

    @classmethod
    def of(cls, meters: Sequence[Meter], *, name: str = "global", on_store_error: str = "open") -> BudgetPolicy:
        """A policy from meters compiled elsewhere (compile_token_limits / compile_budgets with their own paths)."""
        issues = Issues()
        seen: dict[str, str] = {}
        currencies = sorted({m.currency for m in meters if m.kind == MONEY})
        for meter in meters:
            same = f"{meter.meter}|{','.join(meter.per)}"
            if same in seen:
                issues.add(meter.path, f"Counts the same window per the same scope as {seen[same]}; merge them.")
            seen.setdefault(same, meter.path)
        if len(currencies) > 1:
            issues.add("budgets", f"Budgets of one block share one currency; found {', '.join(currencies)}.")
        issues.raise_if_any()
        return cls(name=name, meters=tuple(meters), on_store_error=on_store_error,
                   currency=currencies[0] if currencies else "")

    def plan(self, subject: Subject, tokens: int, cost: int, now: float) -> list[Charge]:
        """The counters a request of `tokens` tokens and `cost` micro-units spends from at `now` (epoch s)."""
        charges = []
        for meter in self.meters:
            start, end = window(meter.period, now)
            charges.append(Charge(meter, counter_key(self.name, meter, subject), start, end,
                                  tokens if meter.kind == TOKENS else cost))
        return charges


def compile_token_limits(value: Any, path: str = "token_limits") -> list[Meter]:
    """`{"tokens_per_minute": N, "tokens_per_day": N, "per": ["consumer", "model"]}`, or a list of them."""
    issues = Issues()
    meters: list[Meter] = []
    for item_path, item in _items(value, path):
        for key in sorted(set(item) - TOKEN_LIMIT_KEYS):
            issues.add(join(item_path, key), f"Unknown key; known: {', '.join(sorted(TOKEN_LIMIT_KEYS))}.")
        given = [key for key in ("tokens_per_minute", "tokens_per_day") if key in item]
        if not given:
            issues.add(item_path, "Needs tokens_per_minute and/or tokens_per_day.")
        per = _per(item.get("per", ["consumer"]), join(item_path, "per"), issues)
        for key in given:
            amount = item[key]
            if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_TOKENS:
                issues.add(join(item_path, key), f"Must be an integer from 1 to {MAX_TOKENS}.")
                continue
            period = MINUTE if key == "tokens_per_minute" else DAY
            meters.append(Meter(TOKENS, period, amount, per, key, join(item_path, key)))
    issues.raise_if_any()
    return meters


def compile_budgets(value: Any, path: str = "budgets") -> list[Meter]:
    """`{"amount": 25.0, "currency": "USD", "period": "month", "per": "consumer"}`, or a list of them."""
    issues = Issues()
    meters: list[Meter] = []
    for item_path, item in _items(value, path):
        for key in sorted(set(item) - BUDGET_KEYS):
            issues.add(join(item_path, key), f"Unknown key; known: {', '.join(sorted(BUDGET_KEYS))}.")
        amount = 0
        if "amount" not in item:
            issues.add(join(item_path, "amount"), "Required: the budget in currency units, e.g. 25.0.")
        else:
            try:
                amount = to_micros(item["amount"], join(item_path, "amount"), allow_zero=False)
            except BlockError as exc:
                for where, messages in exc.errors.items():
                    for message in messages:
                        issues.add(where, message)
        currency = item.get("currency", "USD")
        if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
            issues.add(join(item_path, "currency"), "Must be a three-letter currency code in capitals, e.g. USD.")
        period = item.get("period", MONTH)
        if period not in (DAY, WEEK, MONTH):
            issues.add(join(item_path, "period"), "Must be day, week or month (UTC calendar periods).")
        per = _per(item.get("per", ["consumer"]), join(item_path, "per"), issues)
        if amount and isinstance(currency, str) and period in PERIODS:
            meters.append(Meter(MONEY, str(period), amount, per, "budget", item_path, currency))
    issues.raise_if_any()
    return meters


def counter_key(policy_name: str, meter: Meter, subject: Subject) -> str:
    """`<policy>|<meter>|<scope>`, as the module docstring describes."""
    parts = [_identity(policy_name), meter.meter]
    for scope in meter.per:
        if scope == "consumer":
            parts.append("consumer=" + (_identity(subject.consumer) if subject.consumer else ANONYMOUS))
        elif scope == "route":
            parts.append("route=" + _identity(subject.route))
        else:
            parts.append("model=" + _identity(subject.model))
    if not meter.per:
        parts.append("all")
    return "|".join(parts)


def is_persisted(meter_part: str) -> bool:
    """Whether a counter of this `<meter>` key part outlives a restart (its window is a day or longer)."""
    return meter_part.rsplit(":", 1)[-1] in PERSISTED


def _items(value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, dict):
        return [(path, value)]
    if not isinstance(value, list):
        raise BlockError.at(path, "Must be an object or a list of objects.")
    items = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise BlockError.at(join(path, index), "Must be an object.")
        items.append((join(path, index), item))
    return items


def _per(value: Any, path: str, issues: Issues) -> tuple[str, ...]:
    parts = [value] if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(part, str) for part in parts):
        issues.add(path, 'Must be a scope or a list of them, e.g. ["consumer", "model"].')
        return ()
    for index, part in enumerate(parts):
        if part not in SCOPES:
            where = path if isinstance(value, str) else join(path, index)
            issues.add(where, f"Unknown scope {part!r}; use {', '.join(SCOPES)}.")
    if len(set(parts)) != len(parts):
        issues.add(path, "Names a scope twice.")
    return tuple(scope for scope in SCOPES if scope in parts)


def _identity(text: str) -> str:
    if len(text) > _MAX_PLAIN or any(c in text for c in "|\r\n"):
        return "#" + hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=12).hexdigest()
    return text
