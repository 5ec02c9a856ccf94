"""RedisCacheStore: records shared by every gateway process, one Redis key per record with its TTL set."""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from protocols.cache.entry import Record, dumps, loads
from protocols.redis_outage import RedisOutage

log = logging.getLogger(__name__)
_GLOB = re.compile(r"([*?\[\]\\])")
_PURGE_BATCH = 500
_PURGE_TIMEOUT_S = 60.0


class RedisCacheStore:
    """Records as `{prefix}{key}` strings (see entry.py for the bytes) with `PX` set to their whole life.

    Failure: any Redis or socket error, or no answer within `timeout_s`, makes a read a miss and a write a
    no-op; the gateway answers from the backend as if the route had no cache. After a failure Redis is left
    alone for `retry_interval_s` (every lookup is an immediate miss), then the next call probes it, as the
    rate limiter's store does (both use RedisOutage). Purges SCAN for their keys (`MATCH`, batches of 500)
    and UNLINK them: a rare operator action, bounded by a minute.
    """

    shared = True

    def __init__(self, url: str, prefix: str = "rusta:cache:", *, timeout_s: float = 0.25,
                 retry_interval_s: float = 1.0, max_connections: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_interval_s = retry_interval_s
        self.max_connections = max_connections
        self.outage = RedisOutage("Redis cache store", url, "serving without the cache",
                                  retry_interval_s=retry_interval_s, clock=clock, logger=log)
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self.max_connections, timeout=self.timeout_s,
                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s, retry=Retry(NoBackoff(), 1),
            )
            self._client = Redis(connection_pool=pool)
            self._loop = loop
        return self._client

    @property
    def healthy(self) -> bool:
        return self.outage.healthy

    @property
    def failures(self) -> int:
        """Calls that failed on Redis (not those skipped while it was away)."""
        return self.outage.failures

    async def get(self, key: str) -> Record | None:
        if self.outage.skipping():
            return None
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                data = await self._redis().get(self.prefix + key)
        except (RedisError, OSError) as exc:  # OSError includes the TimeoutError asyncio.timeout raises
            self.outage.failed(exc)
            return None
        self.outage.succeeded()
        return loads(data) if isinstance(data, bytes) and data else None

    async def set(self, key: str, record: Record, ttl_s: float) -> bool:
        if ttl_s <= 0 or self.outage.skipping():
            return False
        try:
            async with asyncio.timeout(self.timeout_s * 2):
                await self._redis().set(self.prefix + key, dumps(record), px=max(1, int(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self.outage.failed(exc)
            return False
        self.outage.succeeded()
        return True

    async def purge(self, route: str | None = None, url: str | None = None) -> int:
        """Delete every record of this prefix, of one route, or of one URL key; returns how many went."""
        prefix = _escape(self.prefix)
        if route is None and url is None:
            pattern = prefix + "*"
        elif url is None:
            pattern = f"{prefix}{_escape(route or '')}|*"
        elif route is None:
            # Route names never hold "|", so the URL key sits between the first two; a URL that itself holds
            # "|" may take a few neighbours with it, which only costs them a miss.
            pattern = f"{prefix}*|{_escape(url)}|*"
        else:
            pattern = f"{prefix}{_escape(route)}|{_escape(url)}|*"
        removed = 0
        try:
            async with asyncio.timeout(_PURGE_TIMEOUT_S):
                client = self._redis()
                batch: list[bytes] = []
                async for key in client.scan_iter(match=pattern, count=_PURGE_BATCH):
                    batch.append(key)
                    if len(batch) >= _PURGE_BATCH:
                        removed += await client.unlink(*batch)
                        batch.clear()
                if batch:
                    removed += await client.unlink(*batch)
        except (RedisError, OSError) as exc:
            self.outage.failed(exc)
        return removed

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
            self._client = None


def _escape(text: str) -> str:
    return _GLOB.sub(r"\\\1", text)
