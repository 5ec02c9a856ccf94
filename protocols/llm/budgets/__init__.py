"""Token limits and money budgets of LLM routes: reserve before the provider, settle with its usage, exactly.

Wiring (the LLM proxy)::

    # once per process:
    fallback = LocalBudgetStore()
    store = RedisBudgetStore(redis_url) if redis_url else fallback     # embedded default: the local store
    budgets = Budgets(store, fallback)
    await budgets.seed([SpendEntry.from_dict(d) for d in snapshot])    # at start, from the database's snapshot
    # when the route table is built (BlockError -> refuse the config, errors at their paths):
    policy = BudgetPolicy.from_config(block, name="route:" + route.name)   # or name="global"
    prices = Prices.from_config(target["price_per_million"])               # in policy.currency

    # per request, once the consumer and the target model are known:
    subject = Subject(consumer, route.name, model)
    admission = await budgets.reserve([global_policy, policy], subject,
                                      tokens=prompt_tokens + max_tokens,
                                      cost=prices.max_cost(prompt_tokens, max_tokens))
    if not admission.allowed:
        raise admission.error()          # BudgetExceeded, a GatewayError: 429 naming the limit, Retry-After
    reservation = admission.reservation
    ...                                  # never reached a provider: await budgets.release(reservation)
    await budgets.settle(reservation, tokens=usage.input + usage.output,
                         cost=prices.cost(usage.input, usage.output, usage.cached_input))

    # periodically (a Celery task writes it to the database): [e.as_dict() for e in await budgets.export()]

Blocks (each list may be a single object; unknown keys and mistakes are refused at their path):
- `token_limits`: `[{"tokens_per_minute": N, "tokens_per_day": N, "per": ["consumer", "model"]}]`: at least one
  of the two amounts (each is its own counter); `per`: any of consumer, route, model (default ["consumer"]; []
  is one counter for everything the block covers). A request counts prompt + answer tokens.
- `budgets`: `[{"amount": 25.0, "currency": "USD", "period": "month", "per": "consumer"}]`: `amount` in
  currency units (at most 6 decimals; kept as integer micro-units), `currency` (default USD; one per block),
  `period` day, week or month (default month), `per` as above (default consumer).
- `on_store_error`: "open" (default) or "closed", as for rate limits (below).
Counter keys are `<policy>|<meter>|<scope>` (config.py), e.g. `route:chat|tokens:minute|consumer=alice`.

Windows: fixed, on the UTC calendar: a minute from :00, a day from 00:00 UTC, an ISO week from Monday, a month
from its 1st. Refusals name the window's end (Retry-After). A fixed window was chosen over a sliding one so a
day or a month is one counter per key (a sliding log would keep an entry per request for the whole day) and a
reservation is settled in the window it was made in, whatever the request's length; the cost is the usual one:
across a boundary up to twice a limit can pass within one window's length.

Exactness: a request is admitted only when, in every counter it spends from, settled usage + open reservations
+ its own amount stay within the limit, checked and taken in one atomic step (one Lua script per reserve on
Redis; a call that never awaits on the local store). So under any concurrency the reserved total never passes a
limit; usage can pass it only when a provider reports more than was reserved (a prompt counted short), by that
excess, and the next request then waits for the window to end.

Settle replaces the reserved amounts by the actual ones in the same counters, in one step, once per
reservation id (a record kept `keep_s` after settling makes a retried settle a no-op). A reservation never
settled or released (a crashed process) keeps its amounts counted to its windows' ends.

Stores: RedisBudgetStore shares counters among every process (keys in one Redis Cluster hash slot,
`{budgets}`); LocalBudgetStore counts in one process: on the embedded default with several `--workers`, each
worker counts on its own (a limit admits up to workers x its amount on that machine), as `store: local` rate
limits do. Redis away (down, slow, an error reply): with `on_store_error: "open"` reservations go to the local
fallback (per process, starting from the seeded snapshot), settles of Redis reservations are kept and sent
once Redis answers; with "closed" every request a limit applies to is refused (429 `limits_unavailable`,
Retry-After 1). Redis is left alone for a second after a failure, then probed (protocols.redis_outage).

Money: integer micro-units end to end (Prices.cost rounds a request's cost up to the next micro-unit once).
Persistence: `Budgets.export` lists day-or-longer counters (SpendEntry: key, window start and end, used, held);
`Budgets.seed` raises counters to a snapshot's `used`, never lowers them.
"""
from __future__ import annotations

from protocols.limits.redis_store import StoreUnavailable
from protocols.llm.budgets.config import (
    BudgetPolicy,
    Charge,
    Meter,
    Subject,
    compile_budgets,
    compile_token_limits,
    counter_key,
)
from protocols.llm.budgets.local import LocalBudgetStore
from protocols.llm.budgets.money import Prices, format_micros, to_micros
from protocols.llm.budgets.redis_store import RedisBudgetStore
from protocols.llm.budgets.reservations import Admission, BudgetExceeded, Budgets, Refusal, Reservation
from protocols.llm.budgets.snapshot import SpendEntry
from protocols.llm.budgets.windows import window

__all__ = [
    "Admission", "BudgetExceeded", "BudgetPolicy", "Budgets", "Charge", "LocalBudgetStore", "Meter", "Prices",
    "RedisBudgetStore", "Refusal", "Reservation", "SpendEntry", "StoreUnavailable", "Subject", "compile_budgets",
    "compile_token_limits", "counter_key", "format_micros", "to_micros", "window",
]
