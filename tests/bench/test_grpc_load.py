"""Tests of bench/grpc_load.py: the figures it reports, and its generator against its backend on loopback."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bench import grpc_load
from tests.support.upstream import refused_port


def test_the_summary_gives_throughput_over_the_measured_period_and_nearest_rank_percentiles() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1 ms to 100 ms
    summary = grpc_load.summarise(latencies, 2.0, Counter({"UNAVAILABLE": 3}))
    assert summary["requests"] == 100 and summary["requests_per_s"] == 50.0
    assert (summary["p50_ms"], summary["p90_ms"], summary["p99_ms"]) == (50.0, 90.0, 99.0)
    assert summary["failed"] == {"UNAVAILABLE": 3}


def test_a_summary_of_nothing_has_no_percentiles() -> None:
    summary = grpc_load.summarise([], 1.0, Counter())
    assert summary["requests"] == 0 and summary["p99_ms"] is None


def test_the_generator_calls_the_backend_and_counts_only_the_measured_period() -> None:
    async def scenario() -> dict[str, object]:
        server, port = grpc_load.backend(0)
        await server.start()
        try:
            return await grpc_load.load(f"127.0.0.1:{port}", seconds=0.3, warmup=0.1, concurrency=2)
        finally:
            await server.stop(None)

    result = asyncio.run(scenario())
    assert isinstance(result["requests"], int) and result["requests"] > 0
    assert result["failed"] == {}
    assert result["seconds"] == 0.3


def test_nothing_listening_is_a_load_error() -> None:
    with pytest.raises(grpc_load.LoadError, match="nothing answered gRPC"):
        asyncio.run(grpc_load.load(f"127.0.0.1:{refused_port()}", seconds=0.1, warmup=0, concurrency=1,
                                   ready_timeout=0.3))
