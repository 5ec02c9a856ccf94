"""The exact answer cache of LLM routes: a complete, successful chat answer kept for the same request of the same
consumer, and replayed (as a stream when the request streams) without asking any provider.

The key is a SHA-256 over the route, the consumer (its partition: one tenant never gets another's answer; requests
without a consumer share one), the front door's format and the client's whole request body but its streaming
fields (`stream`, `stream_options`): the model, every message, the system prompt, the tools and every sampling
parameter. Only answers that ended as their format says, with status 200, are stored, never an error nor a cut
stream. Stored in Redis when the gateway has REDIS_URL (every process shares them), else in this process's memory
(at most the route's `max_entries`, least recently used first out); a store that fails is a miss.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from protocols.limits.resp import RedisUnavailable, ReplyError, RespClient
from protocols.llm.config import CacheSettings
from protocols.llm.formats.chat import ChatResponse, ToolCall, Usage

log = logging.getLogger(__name__)

_STREAMING_FIELDS = frozenset({"stream", "stream_options"})
_PREFIX = "rusta:llm:answer:"


def answer_key(route: str, consumer: str | None, client: str, body: dict[str, Any]) -> str:
    """The cache key of one request (see the module docstring)."""
    asked = {key: value for key, value in body.items() if key not in _STREAMING_FIELDS}
    material = json.dumps([route, consumer or "", client, asked], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def encode(answer: ChatResponse) -> bytes:
    return json.dumps(asdict(answer), separators=(",", ":")).encode()


def decode(data: bytes) -> ChatResponse | None:
    """A stored answer; None when it cannot be read (a store shared with another version, say)."""
    try:
        raw = json.loads(data)
        raw["tool_calls"] = [ToolCall(**call) for call in raw["tool_calls"]]
        raw["usage"] = Usage(**raw["usage"])
        return ChatResponse(**raw)
    except (ValueError, TypeError, KeyError):
        return None


class AnswerStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, settings: CacheSettings) -> None: ...

    async def aclose(self) -> None: ...


class MemoryAnswers:
    """This process's answers, each kept `ttl_s`, at most `max_entries` of them (least recently used first out)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, settings: CacheSettings) -> None:
        self._entries[key] = (self.clock() + settings.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > settings.max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()


class RedisAnswers:
    """Answers shared by every gateway process through Redis, each key expiring after `ttl_s`. `max_entries`
    is left to Redis' own eviction (a store that is full answers as a miss)."""

    def __init__(self, url: str) -> None:
        self.client = RespClient(url)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.call("GET", _PREFIX + key)
        except (RedisUnavailable, ReplyError, OSError) as exc:
            log.warning("the LLM answer cache could not be read: %s", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, settings: CacheSettings) -> None:
        try:
            await self.client.call("SET", _PREFIX + key, value, "PX", int(settings.ttl_s * 1000))
        except (RedisUnavailable, ReplyError, OSError) as exc:
            log.warning("the LLM answer cache could not be written: %s", exc)

    async def aclose(self) -> None:
        await self.client.aclose()
