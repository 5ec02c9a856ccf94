"""The Lua scripts RedisStore runs: one script call is one whole decision, atomic on the Redis server.

Every script takes KEYS[1] (the counter) and KEYS[2] (a sequence, sliding window only), and
ARGV = [now in µs or "" for the server's TIME, limit, window in µs, capacity], and returns
{allowed 0/1, remaining, µs until the quota is whole, µs until a retry can succeed (0 when allowed)}.
Times are integer microseconds; numbers are passed to redis.call through string.format, because Redis's
Lua turns a bare number into a string with 14 significant digits, which would round a µs timestamp.
With the caller's clock, a `now` earlier than the state's never reopens a window (a process whose clock is
behind cannot admit extra requests).
"""
from __future__ import annotations

import hashlib

_PRELUDE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
local function int(x) return string.format('%.0f', x) end
local function expire_ms(us) return int(math.ceil(us / 1000) + 1000) end
"""

FIXED_WINDOW_LUA = _PRELUDE + """
local state = redis.call('HMGET', KEYS[1], 's', 'n')
local start = tonumber(state[1])
local n = tonumber(state[2]) or 0
if start == nil or now >= start + window then
  start = now
  n = 0
end
local reset = start + window - now
if n < limit then
  n = n + 1
  redis.call('HSET', KEYS[1], 's', int(start), 'n', int(n))
  redis.call('PEXPIRE', KEYS[1], expire_ms(reset))
  return {1, limit - n, reset, 0}
end
return {0, 0, reset, reset}
"""

SLIDING_WINDOW_LUA = _PRELUDE + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - window))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], int(now), int(now) .. '-' .. seq)
  redis.call('PEXPIRE', KEYS[1], expire_ms(window))
  redis.call('PEXPIRE', KEYS[2], expire_ms(window))
  local newest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
  return {1, limit - count - 1, newest + window - now, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local newest = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return {0, 0, newest + window - now, oldest + window - now}
"""

TOKEN_BUCKET_LUA = _PRELUDE + """
local rate = limit / window
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
elseif now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  local reset = (capacity - tokens) / rate
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', int(ts))
  redis.call('PEXPIRE', KEYS[1], expire_ms(reset))
  return {1, math.floor(tokens + 1e-9), math.ceil(reset), 0}
end
return {0, 0, math.ceil((capacity - tokens) / rate), math.ceil((1 - tokens) / rate)}
"""

SCRIPTS = {"fixed_window": FIXED_WINDOW_LUA, "sliding_window": SLIDING_WINDOW_LUA, "token_bucket": TOKEN_BUCKET_LUA}
SHAS = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}
