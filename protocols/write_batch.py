"""Writes made together: the proxy listener's complete answers, and requests that go to a backend whole, are
written at the end of the event loop's turn, one connection after another, instead of each as soon as it is
ready.

Why: on loopback and in virtual machines, a write to a peer that has gone idle pays for waking it (an
inter-processor interrupt, a VM exit), and the writer is charged for it. Writes in a cluster find the peer already
awake for all but the first. On the bench machine (2 vCPUs; the gateway pinned to one, wrk and the upstream on the
other), alternating runs before and after: the plain route's kernel time per request fell from about 18 to 11-14
µs and its requests/s rose by 15-30%. Nothing waits longer than the loop turn it was ready in.

`BatchedTransport` wraps one connection's transport (the listener's, and the upstream client's connections):
`write_soon` holds one whole message for the loop's `WriteBatch`; every other use of the transport (a write,
close, a hand-over to another protocol) first writes what it holds, so a connection's bytes keep their order
whatever is written next. `abort` drops it, as it drops the transport's own buffer.
"""
from __future__ import annotations

import asyncio
from typing import Any

# A held answer is at most this large; a larger one is written at once (it will not be the only write anyway).
MAX_HELD = 65_536


class WriteBatch:
    """The connections of one event loop holding an answer, written in one callback at the end of the turn."""

    __slots__ = ("loop", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: list[BatchedTransport] = []

    def hold(self, transport: BatchedTransport) -> None:
        if not self.waiting:
            self.loop.call_soon(self.flush)
        self.waiting.append(transport)

    def flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        for transport in waiting:
            transport.flush()


_batches: dict[asyncio.AbstractEventLoop, WriteBatch] = {}


def batch_of(loop: asyncio.AbstractEventLoop) -> WriteBatch:
    """The loop's batch (one per worker's loop; a test's closed loops are dropped)."""
    batch = _batches.get(loop)
    if batch is None:
        for old in [known for known in _batches if known.is_closed()]:
            del _batches[old]
        batch = _batches[loop] = WriteBatch(loop)
    return batch


class BatchedTransport:
    """A connection's transport that can hold one complete answer until its loop's batch writes it."""

    __slots__ = ("transport", "batch", "held")

    def __init__(self, transport: asyncio.Transport, batch: WriteBatch) -> None:
        self.transport = transport
        self.batch = batch
        self.held: bytes | None = None

    def write_soon(self, data: bytes) -> None:
        """Write `data` at the end of this loop turn (at once when it is large or bytes are already held)."""
        if self.held is not None or len(data) > MAX_HELD:
            self.write(data)
            return
        self.held = data
        self.batch.hold(self)

    def flush(self) -> None:
        data = self.held
        if data is not None:
            self.held = None
            if not self.transport.is_closing():
                self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.held is not None:
            self.flush()
        self.transport.write(data)

    def close(self) -> None:
        if self.held is not None:
            self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.held = None
        self.transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        if self.held is not None:
            self.flush()
        self.transport.set_protocol(protocol)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, pause_reading... as the transport's
        return getattr(self.transport, name)
