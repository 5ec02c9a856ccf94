"""The Lua scripts of RedisBudgetStore: one call reserves across every counter of a request, one settles it.

A counter is a hash: `u` (settled usage, tokens or micro-units) and `h` (held by reservations not settled
yet); a request fits a counter when u + h + its amount <= the limit. Amounts only change through HINCRBY, so
Redis does the sums in 64-bit integers; the Lua comparisons see doubles, exact up to 2**53 (the compilers cap
limits and budgets well below). Numbers come in as decimal strings and are passed back to redis.call as such.
"""
from __future__ import annotations

# KEYS: the reservation's record, the index of persisted counters, then the counters.
# ARGV: the record's lifetime in ms, then per counter: limit, amount, expire-at (epoch ms), indexed ("1"/"0").
# Returns {1, totals...} when every counter took the amount, {0, totals...} when none did (totals: u + h of each
# counter before the call), {-1} when the reservation id was already used.
RESERVE_LUA = """
local n = #KEYS - 2
local totals = {}
local fits = 1
for i = 1, n do
  local state = redis.call('HMGET', KEYS[i + 2], 'u', 'h')
  local total = (tonumber(state[1]) or 0) + (tonumber(state[2]) or 0)
  totals[i] = total
  local at = 2 + (i - 1) * 4
  if total + tonumber(ARGV[at + 1]) > tonumber(ARGV[at]) then fits = 0 end
end
if fits == 1 then
  if not redis.call('SET', KEYS[1], 'r', 'PX', ARGV[1], 'NX') then return {-1} end
  for i = 1, n do
    local at = 2 + (i - 1) * 4
    redis.call('HINCRBY', KEYS[i + 2], 'h', ARGV[at + 1])
    redis.call('PEXPIREAT', KEYS[i + 2], ARGV[at + 2])
    if ARGV[at + 3] == '1' then redis.call('ZADD', KEYS[2], ARGV[at + 2], KEYS[i + 2]) end
  end
end
table.insert(totals, 1, fits)
return totals
"""

# KEYS: the reservation's record, then its counters. ARGV: the record's new state ("s" settled, "x" released),
# how long to keep it (ms, so a retried settle is recognised), then per counter: minus the reserved amount (a
# negative integer's text: "-0" is not an integer to Redis, so Python writes it), the actual amount.
# Returns 1 when applied, 0 when the record is not open (settled or released already, or expired): a retried
# settle changes nothing. A counter whose window has expired is left alone (nothing reads it any more).
SETTLE_LUA = """
if redis.call('GET', KEYS[1]) ~= 'r' then return 0 end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local at = 3 + (i - 2) * 2
    redis.call('HINCRBY', KEYS[i], 'h', ARGV[at])
    if ARGV[at + 1] ~= '0' then redis.call('HINCRBY', KEYS[i], 'u', ARGV[at + 1]) end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the index, then counters. ARGV: now (epoch ms), then per counter: settled usage, expire-at (epoch ms).
# Raises each counter's `u` to the snapshot's value (never lowers it: seeding twice, or seeding a store that kept
# its data, counts nothing twice). Returns how many counters were raised.
SEED_LUA = """
local raised = 0
for i = 2, #KEYS do
  local at = 2 + (i - 2) * 2
  if tonumber(ARGV[at + 1]) > tonumber(ARGV[1]) then
    local used = tonumber(redis.call('HGET', KEYS[i], 'u') or '0')
    if used < tonumber(ARGV[at]) then
      redis.call('HSET', KEYS[i], 'u', ARGV[at])
      redis.call('PEXPIREAT', KEYS[i], ARGV[at + 1])
      redis.call('ZADD', KEYS[1], ARGV[at + 1], KEYS[i])
      raised = raised + 1
    end
  end
end
return raised
"""
