"""The gRPC run's two ends, on grpcio's async API: a backend answering one unary method with a 100-byte message,
and a load generator keeping N calls in flight for D seconds (ghz, the usual tool, is not packaged by Debian).

    python -m bench.grpc_load serve --port 9105
    python -m bench.grpc_load load --target 127.0.0.1:9105 --seconds 10 --warmup 3 --concurrency 50

`load` prints one JSON line: requests, seconds, requests_per_s, p50/p75/p90/p99 in ms, and failed calls by status.
Messages are raw bytes (identity serializers): no protobuf compilation is needed, and the bytes on the wire are a
real gRPC unary call's."""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from typing import Any

import grpc

METHOD = "/bench.Echo/Call"
PAYLOAD = b"x" * 100
PERCENTILES = (50, 75, 90, 99)


class LoadError(RuntimeError):
    """The load generator could not reach its target."""


def _call(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return PAYLOAD


def backend(port: int) -> tuple[grpc.aio.Server, int]:
    """The backend, not started, and the port it will listen on (`port`, or one picked when 0): METHOD answers
    PAYLOAD to any request."""
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        METHOD.split("/")[1], {METHOD.split("/")[2]: grpc.unary_unary_rpc_method_handler(_call)})
    server.add_generic_rpc_handlers((handler,))
    return server, server.add_insecure_port(f"127.0.0.1:{port}")


async def serve(port: int) -> None:
    """Run the backend until the process is stopped."""
    server, _ = backend(port)
    await server.start()
    print(f"serving {METHOD} on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def summarise(latencies_s: list[float], seconds: float, failures: Counter[str]) -> dict[str, Any]:
    """The figures of one load run: throughput over the measured period and nearest-rank percentiles in ms."""
    ordered = sorted(latencies_s)
    summary: dict[str, Any] = {
        "requests": len(ordered), "seconds": round(seconds, 3),
        "requests_per_s": round(len(ordered) / seconds, 1) if seconds > 0 else 0.0,
        "failed": dict(failures),
    }
    for p in PERCENTILES:
        rank = max(math.ceil(p / 100 * len(ordered)) - 1, 0)
        summary[f"p{p}_ms"] = round(ordered[rank] * 1000, 3) if ordered else None
    return summary


async def load(target: str, seconds: float, warmup: float, concurrency: int,
               ready_timeout: float = 10.0) -> dict[str, Any]:
    """`concurrency` callers on one channel (one HTTP/2 connection), each calling METHOD in a loop; only calls
    that start and end inside the measured period count."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=ready_timeout)
        except TimeoutError:
            raise LoadError(f"nothing answered gRPC at {target} within {ready_timeout:g} s") from None
        start = time.monotonic() + warmup
        end = start + seconds

        async def caller() -> None:
            while True:
                began = time.monotonic()
                if began >= end:
                    return
                try:
                    await call(PAYLOAD, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    if began >= start:
                        failures[exc.code().name] += 1
                    continue
                finished = time.monotonic()
                if began >= start and finished <= end:
                    latencies.append(finished - began)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
    return summarise(latencies, seconds, failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="run the backend")
    serving.add_argument("--port", type=int, required=True)
    loading = commands.add_parser("load", help="run the load generator")
    loading.add_argument("--target", required=True, help="host:port")
    loading.add_argument("--seconds", type=float, default=10.0)
    loading.add_argument("--warmup", type=float, default=3.0)
    loading.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(serve(args.port))
        return 0
    try:
        result = asyncio.run(load(args.target, args.seconds, args.warmup, args.concurrency))
    except (TimeoutError, grpc.aio.AioRpcError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
