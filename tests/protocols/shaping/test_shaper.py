"""ResponseShaper and RouteShaping on their own: the order of the steps on the ASGI messages, held heads, the
stale copy, and one error report for all four blocks."""
from __future__ import annotations

import asyncio
import json

import pytest

from protocols.block_errors import BlockError
from protocols.cache import CachePolicy, MemoryStore, ResponseCache
from protocols.shaping import ResponseShaper, RouteShaping

JSON = [(b"content-type", b"application/json")]


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)


def shaper(policies, method="GET", request_headers=()):
    shaping = RouteShaping.from_policies(policies)
    assert shaping is not None
    send = Recorder()
    return ResponseShaper(send, shaping, method, "/x", list(request_headers), b"rid"), send


def run(shaper_, *messages):
    async def go() -> None:
        for message in messages:
            await shaper_(message)
    asyncio.run(go())


def start(status=200, headers=JSON):
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data, more=False):
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_a_route_without_blocks_has_no_shaping_and_errors_of_all_blocks_come_together():
    assert RouteShaping.from_policies({"retry": {"max_retries": 1}}) is None
    with pytest.raises(BlockError) as caught:
        RouteShaping.from_policies({"request_transformation": {"path": {"pattern": "("}},
                                    "response_transformation": {"status_code_mappings": "x"},
                                    "cache": {"ttl_s": -1}, "compression": {"min_bytes": "big"}})
    assert set(caught.value.errors) == {"request_transformation.path.pattern",
                                        "response_transformation.status_code_mappings", "cache.ttl_s",
                                        "compression.min_bytes"}


def test_the_head_of_an_edited_json_body_waits_for_the_body_and_gets_its_new_length():
    shaper_, send = shaper({"response_transformation": {"body": {"remove": ["a"]}}})
    run(shaper_, start(headers=[*JSON, (b"content-length", b"13")]), body(b'{"a":1,', True))
    assert send.messages == []  # held: the length is not known yet
    run(shaper_, body(b'"b":2}'))
    head, payload = send.messages
    assert dict(head["headers"])[b"content-length"] == b"7" and payload["body"] == b'{"b":2}'


def test_a_json_body_past_the_cap_goes_out_untouched_from_there_on():
    shaper_, send = shaper({"response_transformation": {"body": {"remove": ["a"]}, "max_body_bytes": 10}})
    run(shaper_, start(), body(b'{"a": "0123', True), body(b'456789"}'))
    assert b"".join(m.get("body", b"") for m in send.messages[1:]) == b'{"a": "0123456789"}'


def test_head_answers_are_not_held():
    shaper_, send = shaper({"response_transformation": {"body": {"remove": ["a"]}}}, method="HEAD")
    run(shaper_, start(headers=[*JSON, (b"content-length", b"99")]))
    assert send.messages[0]["headers"][-1] == (b"content-length", b"99")


def test_a_5xx_is_replaced_by_the_stale_copy_and_its_body_dropped():
    clock = [1000.0]
    cache = ResponseCache(MemoryStore(clock=lambda: clock[0]), clock=lambda: clock[0])
    policy = CachePolicy(ttl_s=5, stale_if_error_s=60)
    shaping = RouteShaping.from_policies({"cache": {"ttl_s": 5, "stale_if_error_s": 60}})

    async def go() -> list[dict]:
        lookup = await cache.lookup(policy, "r", "GET", "h", "/x", b"", [])
        first = Recorder()
        fill = ResponseShaper(first, shaping, "GET", "/x", [], cache=cache, lookup=lookup)
        await fill(start(headers=[(b"content-type", b"text/plain")]))
        await fill(body(b"good"))
        clock[0] += 30
        lookup = await cache.lookup(policy, "r", "GET", "h", "/x", b"", [])
        assert lookup.entry is None and lookup.stale is not None
        second = Recorder()
        failing = ResponseShaper(second, shaping, "GET", "/x", [], cache=cache, lookup=lookup)
        await failing(start(503))
        await failing(body(b"upstream trouble"))
        return second.messages

    head, payload = asyncio.run(go())
    assert head["status"] == 200 and (b"x-cache", b"STALE") in head["headers"]
    assert payload["body"] == b"good"


def test_compression_runs_last_on_the_transformed_body():
    shaper_, send = shaper({"response_transformation": {"body": {"add": {"pad": "x" * 2000}}},
                            "compression": {"min_bytes": 0}}, request_headers=[(b"accept-encoding", b"gzip")])
    run(shaper_, start(), body(b"{}"))
    import gzip

    assert json.loads(gzip.decompress(send.messages[1]["body"])) == {"pad": "x" * 2000}
