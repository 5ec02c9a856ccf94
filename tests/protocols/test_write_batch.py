"""Answers written together at the end of the loop turn (protocols.write_batch): what a connection's peer receives
keeps its order whatever the gateway writes, closes or hands over next, and nothing is held past the turn."""
from __future__ import annotations

import asyncio
from typing import Any

from protocols.write_batch import MAX_HELD, BatchedTransport, batch_of


class Recording:
    """A transport that records what reaches it, in order."""

    def __init__(self, log: list[tuple[str, Any]], name: str) -> None:
        self.log = log
        self.name = name
        self.closing = False

    def write(self, data: bytes) -> None:
        self.log.append((self.name, data))

    def close(self) -> None:
        self.closing = True
        self.log.append((self.name, "close"))

    def abort(self) -> None:
        self.closing = True
        self.log.append((self.name, "abort"))

    def is_closing(self) -> bool:
        return self.closing

    def set_protocol(self, protocol: Any) -> None:
        self.log.append((self.name, "set_protocol"))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return f"{self.name}:{name}"


def run(body: Any) -> list[tuple[str, Any]]:
    log: list[tuple[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        batch = batch_of(loop)
        await body(log, lambda name: BatchedTransport(Recording(log, name), batch))  # type: ignore[arg-type]

    asyncio.run(main())
    return log


def test_answers_of_one_turn_go_out_together_after_it_in_the_order_they_were_ready():
    async def body(log, make):
        a, b = make("a"), make("b")
        a.write_soon(b"answer a")
        b.write_soon(b"answer b")
        log.append(("turn", "ends"))
        await asyncio.sleep(0)

    assert run(body) == [("turn", "ends"), ("a", b"answer a"), ("b", b"answer b")]


def test_a_later_write_close_or_hand_over_first_writes_what_is_held():
    async def body(log, make):
        a, b, c = make("a"), make("b"), make("c")
        a.write_soon(b"first")
        a.write(b"second")
        b.write_soon(b"answer")
        b.close()
        c.write_soon(b"before the upgrade")
        c.set_protocol(object())
        await asyncio.sleep(0)

    assert run(body) == [("a", b"first"), ("a", b"second"), ("b", b"answer"), ("b", "close"),
                         ("c", b"before the upgrade"), ("c", "set_protocol")]


def test_an_abort_drops_what_is_held_and_a_closed_connection_gets_nothing():
    async def body(log, make):
        a, b = make("a"), make("b")
        a.write_soon(b"dropped")
        a.abort()
        b.write_soon(b"too late")
        b.transport.closing = True  # the peer went away before the turn ended
        await asyncio.sleep(0)

    assert run(body) == [("a", "abort")]


def test_a_large_answer_or_a_second_one_is_written_at_once():
    async def body(log, make):
        a = make("a")
        a.write_soon(b"x" * (MAX_HELD + 1))
        log.append(("turn", "goes on"))
        a.write_soon(b"held")
        a.write_soon(b"then this")
        log.append(("turn", "ends"))
        await asyncio.sleep(0)

    log = run(body)
    assert [entry if entry[0] == "turn" else (entry[0], len(entry[1])) for entry in log] == [
        ("a", MAX_HELD + 1), ("turn", "goes on"), ("a", 4), ("a", 9), ("turn", "ends")]


def test_everything_else_is_the_transports():
    async def body(log, make):
        log.append(("extra", make("a").get_extra_info("peername")))

    assert run(body) == [("extra", "a:peername")]
