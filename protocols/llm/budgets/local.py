"""LocalBudgetStore: token and money counters in one process's memory (embedded default; fallback from Redis)."""
from __future__ import annotations

from collections.abc import Sequence

from protocols.llm.budgets.config import Charge, is_persisted
from protocols.llm.budgets.snapshot import SpendEntry, grace_s

OPEN = "r"
# Expired counters and reservation records are dropped at most this often (seconds of the caller's clock).
_SWEEP_EVERY_S = 30.0


class LocalBudgetStore:
    """The same counters, decisions and idempotent settles as RedisBudgetStore, in one process.

    Nothing here awaits, so each call is atomic in its event loop, as a Lua script is in Redis. The counts are
    this process's only: with `runproxy --workers N` on the embedded default every worker keeps its own, so a
    limit admits up to N times its amount on that machine (the same as a `store: local` rate limit); set
    `REDIS_URL` to share them. Memory: one entry per counter and window (about 200 bytes) and one per open
    reservation; counters are dropped once their window (plus a grace) is over, never earlier, since forgetting
    a money counter would forget spend.
    """

    def __init__(self) -> None:
        # (counter key, window start) -> [used, held, window end, drop at]
        self._counters: dict[tuple[str, int], list[int]] = {}
        # reservation id -> (state, drop at)
        self._records: dict[str, tuple[str, float]] = {}
        self._swept_at = 0.0

    def __len__(self) -> int:
        return len(self._counters)

    async def reserve(self, reservation_id: str, charges: Sequence[Charge], now: float,
                      hold_s: float) -> tuple[int, list[int]]:
        """(1, totals) when every counter took its amount, (0, totals) when none did, (-1, []) for a used id;
        totals are used + held of each counter before the call."""
        self._sweep(now)
        counters = self._counters
        states = [counters.get((charge.key, charge.start)) for charge in charges]
        totals = [state[0] + state[1] if state is not None else 0 for state in states]
        if any(total + charge.amount > charge.meter.limit for total, charge in zip(totals, charges, strict=True)):
            return 0, totals
        if reservation_id in self._records:
            return -1, []
        self._records[reservation_id] = (OPEN, now + hold_s)
        for state, charge in zip(states, charges, strict=True):
            if state is None:
                counters[(charge.key, charge.start)] = [0, charge.amount, charge.end,
                                                        charge.end + grace_s(charge.meter.meter)]
            else:
                state[1] += charge.amount
        return 1, totals

    async def settle(self, reservation_id: str, charges: Sequence[Charge], actuals: Sequence[int], state: str,
                     now: float, keep_s: float) -> bool:
        """Replace each charge's held amount by its actual one, once per reservation (False: already done)."""
        record = self._records.get(reservation_id)
        if record is None or record[0] != OPEN or record[1] <= now:
            return False
        for charge, actual in zip(charges, actuals, strict=True):
            counter = self._counters.get((charge.key, charge.start))
            if counter is not None:
                counter[1] -= charge.amount
                counter[0] += actual
        self._records[reservation_id] = (state, now + keep_s)
        return True

    async def export(self, now: float) -> list[SpendEntry]:
        """Every day-or-longer counter still kept (its window current, or over for less than the grace)."""
        self._sweep(now, force=True)
        return [SpendEntry(key, start, state[2], state[0], state[1])
                for (key, start), state in self._counters.items() if is_persisted(key.split("|", 2)[1])]

    async def seed(self, entries: Sequence[SpendEntry], now: float) -> int:
        """Raise counters to a snapshot's `used` (never lower them); entries whose window is over are skipped."""
        raised = 0
        for entry in entries:
            if entry.end <= now:
                continue
            state = self._counters.get((entry.key, entry.start))
            if state is None:
                self._counters[(entry.key, entry.start)] = [entry.used, 0, entry.end,
                                                            entry.end + grace_s(entry.meter)]
                raised += 1
            elif state[0] < entry.used:
                state[0] = entry.used
                raised += 1
        return raised

    def _sweep(self, now: float, force: bool = False) -> None:
        if not force and now < self._swept_at + _SWEEP_EVERY_S:
            return
        self._swept_at = now
        for key in [key for key, state in self._counters.items() if state[3] <= now]:
            del self._counters[key]
        for rid in [rid for rid, (_, drop_at) in self._records.items() if drop_at <= now]:
            del self._records[rid]
