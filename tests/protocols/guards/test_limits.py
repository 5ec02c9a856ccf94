"""Request size limits: 414 for long targets, 431 for header fields, 413 by Content-Length and by counting."""
from __future__ import annotations

import asyncio

import pytest

from protocols.block_errors import BlockError
from protocols.guards import HeaderFieldsTooLarge, PayloadTooLarge, RequestLimits, UriTooLong


def scope(path: str = "/x", query: bytes = b"", headers=()) -> dict:
    return {"path": path, "raw_path": path.encode(), "query_string": query, "headers": list(headers)}


def test_a_target_at_the_limit_passes_and_one_past_it_is_414():
    limits = RequestLimits(max_url_length=20)
    limits.check_head(scope("/" + "a" * 14, b"q=1"))  # 15 + 1 + 3 = 19
    limits.check_head(scope("/" + "a" * 15, b"q=1"))  # 20
    with pytest.raises(UriTooLong) as caught:
        limits.check_head(scope("/" + "a" * 16, b"q=1"))
    assert caught.value.status == 414


def test_too_many_header_fields_are_431():
    limits = RequestLimits(max_header_count=3)
    limits.check_head(scope(headers=[(b"a", b"1")] * 3))
    with pytest.raises(HeaderFieldsTooLarge) as caught:
        limits.check_head(scope(headers=[(b"a", b"1")] * 4))
    assert caught.value.status == 431


def test_header_fields_larger_than_the_byte_limit_are_431():
    limits = RequestLimits(max_header_bytes=100)
    limits.check_head(scope(headers=[(b"x-a", b"v" * 90)]))  # 3 + 90 + 4 = 97
    with pytest.raises(HeaderFieldsTooLarge, match="100 bytes"):
        limits.check_head(scope(headers=[(b"x-a", b"v" * 94)]))


def test_a_declared_body_over_the_limit_is_413_before_anything_is_read():
    limits = RequestLimits(max_body_bytes=1000)
    limits.check_head(scope(headers=[(b"content-length", b"1000")]))
    with pytest.raises(PayloadTooLarge) as caught:
        limits.check_head(scope(headers=[(b"content-length", b"1001")]))
    assert caught.value.status == 413
    assert (b"connection", b"close") in caught.value.headers


def test_zero_switches_limits_off():
    limits = RequestLimits(max_body_bytes=0, max_header_bytes=0, max_header_count=0, max_url_length=0)
    limits.check_head(scope("/" + "a" * 100_000, headers=[(b"content-length", b"99999999999")] * 500))


def receiver(chunks: list[bytes]):
    messages = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]

    async def receive() -> dict:
        return messages.pop(0)

    return receive


async def drain(receive) -> int:
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            return total


def test_a_streamed_body_within_the_limit_passes_untouched():
    limits = RequestLimits(max_body_bytes=10)
    assert asyncio.run(drain(limits.limit_receive(receiver([b"12345", b"12345"])))) == 10


def test_a_streamed_body_is_cut_off_with_413_once_it_passes_the_limit():
    limits = RequestLimits(max_body_bytes=10)
    with pytest.raises(PayloadTooLarge):
        asyncio.run(drain(limits.limit_receive(receiver([b"12345", b"12345", b"1"]))))


def test_without_a_body_limit_receive_is_not_wrapped():
    async def receive() -> dict:
        return {}

    assert RequestLimits(max_body_bytes=0).limit_receive(receive) is receive


def test_the_defaults_are_no_body_limit_32_kib_100_fields_and_8192_characters():
    limits = RequestLimits.from_config(None)
    assert (limits.max_body_bytes, limits.max_header_bytes, limits.max_header_count, limits.max_url_length) == (
        0, 32 * 1024, 100, 8192)


def test_a_negative_limit_is_refused_by_path():
    with pytest.raises(BlockError) as caught:
        RequestLimits.from_config({"max_body_bytes": -1, "max_url_length": "long"})
    assert set(caught.value.errors) == {"max_body_bytes", "max_url_length"}
