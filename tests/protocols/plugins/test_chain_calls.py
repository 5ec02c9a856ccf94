"""PluginChain.call: a phase that finishes without waiting, one that waits many times, one with a timeout of its own,
and one that overruns its budget, each as the plugin would see it awaited directly."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protocols.plugins import Continue, Modify, PluginChain, PluginEntry, PluginMetrics, RequestView
from protocols.plugins.chain import LoadedPlugin

VIEW = RequestView("GET", "/x", "", (), "127.0.0.1", "r")


class Phases:
    """An upstream phase chosen by name, each returning what it went through."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.cleaned_up = False

    async def upstream(self, view: RequestView) -> Any:
        if self.kind == "sync":
            return Modify(set=(("X-Done", "sync"),))
        if self.kind == "many":
            for _ in range(5):
                await asyncio.sleep(0.001)
            await asyncio.sleep(0)
            return Modify(set=(("X-Done", "many"),))
        if self.kind == "own_timeout":
            try:
                async with asyncio.timeout(0.02):
                    await asyncio.sleep(5)
            except TimeoutError:
                return Modify(set=(("X-Done", "own_timeout"),))
        if self.kind == "overrun":
            try:
                await asyncio.sleep(5)
            finally:
                self.cleaned_up = True
        return Continue()


def chain_with(kind: str, timeout_ms: int = 200) -> tuple[PluginChain, Phases]:
    plugin = Phases(kind)
    entry = PluginEntry("phases", {}, timeout_ms=timeout_ms, on_error="continue")
    return PluginChain("r", [LoadedPlugin(entry, plugin)], PluginMetrics()), plugin


@pytest.mark.parametrize("kind", ["sync", "many", "own_timeout"])
def test_a_phase_gets_its_result_through_whatever_it_awaits(kind: str) -> None:
    chain, _ = chain_with(kind)

    async def run() -> Any:
        return await chain.call(chain.plugins[0], "upstream", VIEW)

    assert asyncio.run(run()) == Modify(set=(("X-Done", kind),))
    assert not chain.metrics.errors


def test_a_phase_past_its_budget_is_cut_off_counted_and_its_cleanup_runs() -> None:
    chain, plugin = chain_with("overrun", timeout_ms=20)

    async def run() -> Any:
        return await chain.call(chain.plugins[0], "upstream", VIEW)

    assert asyncio.run(run()) is None
    assert chain.metrics.errors == {("phases", "upstream", "timeout"): 1}
    assert plugin.cleaned_up


def test_a_request_cancelled_while_a_phase_waits_is_cancelled_not_answered() -> None:
    chain, plugin = chain_with("overrun", timeout_ms=5000)

    async def run() -> None:
        task = asyncio.ensure_future(chain.call(chain.plugins[0], "upstream", VIEW))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert plugin.cleaned_up
