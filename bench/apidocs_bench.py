"""API docs sampler micro-benchmark: what a route's `api_docs` block adds to a request (protocols.apidocs.sampler).

- not sampled: what ProxyApp does for a request of a route with the block that is not drawn (the draw, and the
  three `exchange.sample` checks every request makes); the target is at most 20 µs, the aim about 1 µs;
- sampled: a drawn request with a 0.3 KB JSON body and a 2 KB JSON answer, against the same ASGI sends without
  the sample: building the DocsSample, copying the bodies, the sample into the buffer;
- learned: what the flusher's thread then spends on that sample (parsing, shapes, merging), off the event loop.

`python -m bench.apidocs_bench [--number N] [--json]`; `make bench` runs it and keeps its figures in the report.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import timeit
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.apidocs.config import DocsPolicy  # noqa: E402
from protocols.apidocs.learn import Learner  # noqa: E402
from protocols.apidocs.sampler import DocsSample, SampleBuffer, sampled  # noqa: E402
from protocols.table import BackendSpec, CompiledRoute, RouteSpec  # noqa: E402

TARGET_US = 20.0
ROOT = Path(__file__).resolve().parent.parent  # where `python -m bench.apidocs_bench` runs from
ROUTE = CompiledRoute(RouteSpec(id=1, name="users", external_path="/users/{id}", methods=("GET", "POST"),
                                backends=(BackendSpec(id=1, scheme="http", host="127.0.0.1", port=9),)))
HEADERS = [(b"host", b"api.example.com"), (b"content-type", b"application/json"), (b"accept", b"*/*")]
REQUEST = json.dumps({"name": "Alice", "email": "alice@example.com", "tags": ["a", "b"], "age": 31,
                      "address": {"street": "1 Main St", "city": "Paris", "zip": "75001"},
                      "preferences": {"newsletter": True, "language": "fr"}}).encode()
RESPONSE = json.dumps({"id": 42, "created_at": "2026-12-07T04:30:41Z", "items": [
    {"sku": f"SKU-{n:04d}", "qty": n, "price": 9.5 + n, "state": "ok"} for n in range(20)]}).encode()
RESPONSE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(RESPONSE)).encode())]


class Exchange:
    __slots__ = ("sample",)

    def __init__(self) -> None:
        self.sample: DocsSample | None = None


def per_call_us(statement: Any, number: int) -> float:
    empty = min(timeit.repeat(lambda: None, number=number, repeat=5))
    best = min(timeit.repeat(statement, number=number, repeat=5))
    return max(0.0, best - empty) / number * 1e6


def not_sampled_us(number: int) -> float:
    """The draw of a route whose rate never picks the request, and the proxy's three sample checks."""
    docs = DocsPolicy(sample_rate=0.0)
    exchange = Exchange()

    def request() -> None:
        if docs is not None and sampled(docs):
            raise AssertionError("drawn at rate 0")
        if exchange.sample is not None or exchange.sample is not None or exchange.sample is not None:
            raise AssertionError

    return per_call_us(request, number)


async def _noop(message: dict[str, Any]) -> None:
    return None


def sampled_us(number: int) -> float:
    """A drawn request's extra cost: the same two ASGI sends timed with and without the sample around them."""
    docs = DocsPolicy(sample_rate=1.0, max_body_bytes=64 << 10)
    start = {"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS}
    body = {"type": "http.response.body", "body": RESPONSE}

    async def plain(count: int) -> float:
        began = time.perf_counter()
        for _ in range(count):
            await _noop(start)
            await _noop(body)
        return time.perf_counter() - began

    async def with_sample(count: int) -> float:
        buffer = SampleBuffer()
        began = time.perf_counter()
        for index in range(count):
            if sampled(docs):
                sample = DocsSample(_noop, docs, ROUTE, "POST", "/users/42", b"limit=10&verbose=true", HEADERS)
                sample.take_request_body(REQUEST)
                await sample(start)
                await sample(body)
                sample.finish(buffer)
                if index % 1000 == 999:
                    buffer.take()
        return time.perf_counter() - began

    async def measure() -> float:
        best_plain = min([await plain(number) for _ in range(5)])
        best_sampled = min([await with_sample(number) for _ in range(5)])
        return max(0.0, best_sampled - best_plain) / number * 1e6

    return asyncio.run(measure())


def learned_us(number: int) -> float:
    """The flusher thread's cost of learning one such sample."""
    docs = DocsPolicy(sample_rate=1.0)
    buffer = SampleBuffer()
    sample = DocsSample(_noop, docs, ROUTE, "POST", "/users/42", b"limit=10&verbose=true", HEADERS)
    sample.take_request_body(REQUEST)

    async def answer() -> None:
        await sample({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
        await sample({"type": "http.response.body", "body": RESPONSE})

    asyncio.run(answer())
    sample.finish(buffer)
    (raw,) = buffer.take()
    learner = Learner()
    return per_call_us(lambda: learner.add(raw), number)


def run(number: int) -> dict[str, Any]:
    figures = {"not_sampled_us": round(not_sampled_us(number), 3), "sampled_us": round(sampled_us(number // 10), 2),
               "learned_us": round(learned_us(number // 100), 1)}
    return {"ok": True, **figures, "target_us": TARGET_US, "pass": figures["not_sampled_us"] <= TARGET_US,
            "request_bytes": len(REQUEST), "response_bytes": len(RESPONSE)}


def describe(result: dict[str, Any]) -> str:
    verdict = "within" if result["pass"] else "OVER"
    return (f"api_docs sampler: not sampled {result['not_sampled_us']:.3f} µs per request ({verdict} the "
            f"{result['target_us']:g} µs target); sampled +{result['sampled_us']:.2f} µs "
            f"({result['request_bytes']} B JSON request, {result['response_bytes']} B JSON answer); learning it "
            f"on the flusher's thread {result['learned_us']:.1f} µs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing of the not-sampled path")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    result = run(args.number)
    print(json.dumps(result) if args.json else describe(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
