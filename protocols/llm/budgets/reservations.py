"""Budgets: reserve before a provider is called, settle with its reported usage, release when it never was."""
from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from protocols.errors import GatewayError
from protocols.limits.config import ceil_seconds
from protocols.limits.redis_store import StoreUnavailable
from protocols.llm.budgets.config import MONEY, TOKENS, BudgetPolicy, Charge, Meter, Subject
from protocols.llm.budgets.local import LocalBudgetStore
from protocols.llm.budgets.money import format_micros
from protocols.llm.budgets.snapshot import SpendEntry

# Retry-After of a fail-closed refusal: about when the store is probed again (as the rate limiter's).
CLOSED_RETRY_S = 1.0
SETTLED = "s"
RELEASED = "x"
Outcome = Literal["applied", "duplicate", "deferred"]


class BudgetStore(Protocol):
    async def reserve(self, reservation_id: str, charges: Sequence[Charge], now: float,
                      hold_s: float) -> tuple[int, list[int]]: ...

    async def settle(self, reservation_id: str, charges: Sequence[Charge], actuals: Sequence[int], state: str,
                     now: float, keep_s: float) -> bool: ...

    async def export(self, now: float) -> list[SpendEntry]: ...

    async def seed(self, entries: Sequence[SpendEntry], now: float) -> int: ...


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an admitted request holds until it is settled or released: `id` (unique across processes), the
    counters and amounts (`charges`), and whether it was made on the local fallback (`degraded`)."""

    id: str
    charges: tuple[Charge, ...]
    tokens: int
    cost: int
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the limit or budget (`meter`, of policy `policy`, counter `key`), what was
    already counted in its window (`counted`: settled + held), what the request asked for, and `reset_s`, the
    seconds until its window ends (Retry-After). `exceeds_limit`: the request alone is more than the limit,
    so no wait helps. `meter` is None when the shared store was away and the policy fails closed."""

    meter: Meter | None
    policy: str = ""
    key: str = ""
    counted: int = 0
    requested: int = 0
    reset_s: float = CLOSED_RETRY_S
    exceeds_limit: bool = False

    def message(self) -> str:
        meter = self.meter
        if meter is None:
            return (f"Token limits and budgets cannot be checked right now; retry in "
                    f"{max(1, ceil_seconds(self.reset_s))} s.")
        what = "Budget" if meter.kind == MONEY else "Token limit"
        scope = self.key.split("|", 2)[2]
        where = f"{meter.label} ({meter.describe()}) of {self.policy}, {scope}"
        if self.exceeds_limit:
            asked = (f"{format_micros(self.requested)} {meter.currency}" if meter.kind == MONEY
                     else f"{self.requested} tokens")
            return f"{what} {where}: this request alone may use {asked}, more than the limit; ask for less."
        return f"{what} {where} reached; resets in {max(1, ceil_seconds(self.reset_s))} s."


class BudgetExceeded(GatewayError):
    """429 `token_limit_exceeded` / `budget_exceeded` naming the limit and when it resets (Retry-After); 400
    with the same types when the request alone exceeds the limit; 429 `limits_unavailable` (Retry-After 1)
    when the shared store is away and the policy fails closed."""

    def __init__(self, refusal: Refusal) -> None:
        meter = refusal.meter
        kind = "limits_unavailable" if meter is None else (
            "budget_exceeded" if meter.kind == MONEY else "token_limit_exceeded")
        headers = [] if refusal.exceeds_limit else [(b"retry-after", b"%d" % max(1, ceil_seconds(refusal.reset_s)))]
        super().__init__(400 if refusal.exceeds_limit else 429, kind, refusal.message(), headers)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to a reserve: a `reservation` to settle or release when allowed, a `refusal` when not.
    `degraded`: the shared store was away (the fallback decided, or the policy failed closed)."""

    allowed: bool
    reservation: Reservation | None = None
    refusal: Refusal | None = None
    degraded: bool = False

    def error(self) -> BudgetExceeded:
        assert self.refusal is not None, "only a refused admission has an error"
        return BudgetExceeded(self.refusal)


class Budgets:
    """Reserve, settle and release on `store` (LocalBudgetStore when None), falling back to `fallback` (a
    LocalBudgetStore) while the store raises StoreUnavailable, by the policies' `on_store_error`.

    - `hold_s`: how long an open reservation is known (longer than any request may run); a settle after that
      changes nothing, and the reserved amounts stay counted to their windows' ends, as for a reservation
      never settled (a crashed process): errors count against the caller's limit, never in its favour.
    - `keep_s`: how long a settled reservation is remembered, so a retried settle is recognised.
    - A settle that cannot reach the shared store is kept (at most `max_deferred`) and sent again, by the
      next call that finds the store healthy; the settle being idempotent, a retry never counts twice.
    `clock` is wall-clock epoch seconds (windows follow the UTC calendar); tests pass `now` instead.
    """

    def __init__(self, store: BudgetStore | None = None, fallback: LocalBudgetStore | None = None, *,
                 hold_s: float = 3600.0, keep_s: float = 600.0, max_deferred: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.store: BudgetStore = store if store is not None else LocalBudgetStore()
        self.fallback = fallback if fallback is not None else LocalBudgetStore()
        self.hold_s = hold_s
        self.keep_s = keep_s
        self.clock = clock
        self.deferred: deque[tuple[Reservation, list[int], str]] = deque(maxlen=max_deferred)

    async def reserve(self, policies: Sequence[BudgetPolicy], subject: Subject, *, tokens: int, cost: int = 0,
                      now: float | None = None) -> Admission:
        """Admit a request of `tokens` (its prompt's counted tokens + max_tokens) and `cost` (micro-units: its
        most expensive outcome, Prices.max_cost) against every limit and budget of `policies` (gateway-wide and
        the route's), all or nothing."""
        now = self.clock() if now is None else now
        charges = tuple(charge for policy in policies for charge in policy.plan(subject, tokens, cost, now))
        if not charges:
            return Admission(True, Reservation(uuid.uuid4().hex, (), tokens, cost))
        if self.deferred:
            await self._send_deferred(now)
        try:
            return await self._reserve(self.store, charges, policies, tokens, cost, now, degraded=False)
        except StoreUnavailable:
            if any(policy.on_store_error == "closed" for policy in policies if policy.meters):
                return Admission(False, refusal=Refusal(None), degraded=True)
            return await self._reserve(self.fallback, charges, policies, tokens, cost, now, degraded=True)

    async def settle(self, reservation: Reservation, *, tokens: int, cost: int = 0,
                     now: float | None = None) -> Outcome:
        """Replace the reserved amounts by the provider's reported usage (`tokens` in + out, `cost` in
        micro-units), releasing the difference or adding the excess. Idempotent per reservation id: a second
        settle (or a settle after a release) is "duplicate" and changes nothing; "deferred" when the shared
        store was away (sent again later)."""
        actuals = [tokens if charge.meter.kind == TOKENS else cost for charge in reservation.charges]
        return await self._finish(reservation, actuals, SETTLED, now)

    async def release(self, reservation: Reservation, now: float | None = None) -> Outcome:
        """Give everything back: the request never reached a provider (refused by a later check, or failed
        before sending). Idempotent as `settle`."""
        return await self._finish(reservation, [0] * len(reservation.charges), RELEASED, now)

    async def export(self, now: float | None = None) -> list[SpendEntry]:
        """Current spend of every day-or-longer counter (money budgets, tokens per day) in the shared store,
        for a periodic task to write to the database. Raises StoreUnavailable when the store is away."""
        return await self.store.export(self.clock() if now is None else now)

    async def seed(self, entries: Sequence[SpendEntry], now: float | None = None) -> int:
        """At start-up, raise the store's counters to a snapshot's settled usage (windows still current only;
        never lowering a counter, so seeding a store that kept its data counts nothing twice). The fallback is
        seeded too, so an outage does not start every consumer's month from zero. Returns counters raised."""
        now = self.clock() if now is None else now
        raised = await self.fallback.seed(entries, now)
        if self.store is self.fallback:
            return raised
        return await self.store.seed(entries, now)

    async def _reserve(self, store: BudgetStore, charges: tuple[Charge, ...], policies: Sequence[BudgetPolicy],
                       tokens: int, cost: int, now: float, degraded: bool) -> Admission:
        while True:
            reservation_id = uuid.uuid4().hex
            fits, totals = await store.reserve(reservation_id, charges, now, self.hold_s)
            if fits != -1:  # -1: a used id (never seen in practice with 122 random bits); draw another
                break
        if fits:
            return Admission(True, Reservation(reservation_id, charges, tokens, cost, degraded), degraded=degraded)
        return Admission(False, refusal=_refusal(charges, totals, policies, now), degraded=degraded)

    async def _finish(self, reservation: Reservation, actuals: list[int], state: str,
                      now: float | None) -> Outcome:
        if not reservation.charges:
            return "applied"
        now = self.clock() if now is None else now
        if reservation.degraded:
            done = await self.fallback.settle(reservation.id, reservation.charges, actuals, state, now, self.keep_s)
            return "applied" if done else "duplicate"
        if self.deferred:
            await self._send_deferred(now)
        try:
            done = await self.store.settle(reservation.id, reservation.charges, actuals, state, now, self.keep_s)
        except StoreUnavailable:
            self.deferred.append((reservation, actuals, state))
            return "deferred"
        return "applied" if done else "duplicate"

    async def _send_deferred(self, now: float) -> None:
        """Send the settles kept during an outage, oldest first, until one fails again."""
        deferred = self.deferred
        while deferred:
            reservation, actuals, state = deferred[0]
            try:
                await self.store.settle(reservation.id, reservation.charges, actuals, state, now, self.keep_s)
            except StoreUnavailable:
                return
            deferred.popleft()


def _refusal(charges: Sequence[Charge], totals: Sequence[int], policies: Sequence[BudgetPolicy],
             now: float) -> Refusal:
    """The counter to name: one the request can never fit if any, else the one whose window ends last
    (nothing is admitted before then, unless reservations in it settle for less)."""
    names = {id(meter): policy.name for policy in policies for meter in policy.meters}
    refusing = [(charge, total) for charge, total in zip(charges, totals, strict=True)
                if total + charge.amount > charge.meter.limit]
    if not refusing:  # the store refused but no counter is full by its totals: cannot happen; name the first
        refusing = [(charges[0], totals[0])]
    too_big = [(charge, total) for charge, total in refusing if charge.amount > charge.meter.limit]
    charge, total = too_big[0] if too_big else max(refusing, key=lambda pair: pair[0].end)
    return Refusal(charge.meter, names.get(id(charge.meter), ""), charge.key, total, charge.amount,
                   max(0.0, charge.end - now), bool(too_big))

