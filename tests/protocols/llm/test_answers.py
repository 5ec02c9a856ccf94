"""The LLM answer cache's keys and stores: one tenant's key never another's, streaming fields left out of the key,
answers kept for their ttl and at most max_entries in memory, and shared through a real Redis."""
from __future__ import annotations

import asyncio
import os

import pytest

from protocols.llm.answers import MemoryAnswers, RedisAnswers, answer_key, decode, encode
from protocols.llm.config import CacheSettings
from protocols.llm.formats.chat import ChatResponse, ToolCall, Usage

REDIS_URL = os.environ.get("REDIS_URL", "")
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.2}


def test_the_key_partitions_by_route_consumer_and_door_and_covers_every_asked_field() -> None:
    key = answer_key("chat", "alice", "openai", BODY)
    assert key == answer_key("chat", "alice", "openai", {**BODY, "stream": True, "stream_options": {}})
    for other in (answer_key("chat", "bob", "openai", BODY), answer_key("chat", None, "openai", BODY),
                  answer_key("other", "alice", "openai", BODY), answer_key("chat", "alice", "anthropic", BODY),
                  answer_key("chat", "alice", "openai", {**BODY, "temperature": 0.3}),
                  answer_key("chat", "alice", "openai", {**BODY, "tools": [{"type": "function"}]})):
        assert other != key


def test_an_answer_round_trips_and_garbage_reads_as_a_miss() -> None:
    answer = ChatResponse("id1", "m", "text", [ToolCall("c1", "f", "{}")], "tool_calls", Usage(5, 3, 1), 1700)
    assert decode(encode(answer)) == answer
    assert decode(b"not json") is None and decode(b'{"id": 1}') is None


def test_memory_answers_expire_and_keep_the_most_recently_used() -> None:
    now = [0.0]
    store = MemoryAnswers(clock=lambda: now[0])
    settings = CacheSettings(ttl_s=10, max_entries=2)

    async def run() -> list[bytes | None]:
        await store.set("a", b"1", settings)
        await store.set("b", b"2", settings)
        await store.get("a")  # a is now the most recently used
        await store.set("c", b"3", settings)  # b goes
        seen = [await store.get(key) for key in ("a", "b", "c")]
        now[0] = 11.0
        return seen + [await store.get("a")]

    assert asyncio.run(run()) == [b"1", None, b"3", None]


@pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")
def test_redis_answers_are_shared_and_expire() -> None:
    async def run() -> tuple[bytes | None, bytes | None, bytes | None]:
        writer, reader = RedisAnswers(REDIS_URL), RedisAnswers(REDIS_URL)
        key = answer_key("chat", "alice", "openai", {**BODY, "n": os.getpid()})
        try:
            await writer.set(key, b"kept", CacheSettings(ttl_s=0.3))
            shared = await reader.get(key)
            await asyncio.sleep(0.5)
            gone = await reader.get(key)
            return shared, gone, await reader.get("never-written")
        finally:
            await writer.aclose()
            await reader.aclose()

    assert asyncio.run(run()) == (b"kept", None, None)


def test_an_unreachable_redis_is_a_miss_not_an_error() -> None:
    async def run() -> bytes | None:
        store = RedisAnswers("redis://127.0.0.1:1/0")
        try:
            await store.set("k", b"v", CacheSettings())
            return await store.get("k")
        finally:
            await store.aclose()

    assert asyncio.run(run()) is None
