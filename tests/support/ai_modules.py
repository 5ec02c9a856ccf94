"""Decision modules as a third party would ship them (entry point group `rusta.ai_strategies`), and a fixture
helper that installs them the way pip does: a `.dist-info` folder with `entry_points.txt` on sys.path."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from protocols.ai.decide import Decision, RoutingRequest
from protocols.ai.strategies import StrategyContext


class HeaderRouter:
    """Sends requests carrying `header: value` to backend `index`; no preference otherwise."""

    def __init__(self, options: Mapping[str, Any], context: StrategyContext) -> None:
        self.name = "header_router"
        self.budget_s = context.budget_s
        self.header = options["header"].lower().encode()
        self.value = str(options.get("value", "")).encode()
        self.index = int(options.get("index", 1))
        self.observed: list[tuple[int | None, int]] = []

    @staticmethod
    def check_options(options: Mapping[str, Any]) -> dict[str, str]:
        problems = {}
        if not isinstance(options.get("header"), str):
            problems["header"] = "Must name the request header to route by."
        if not isinstance(options.get("index", 1), int):
            problems["index"] = "Must be a backend position."
        return problems

    async def decide(self, request: RoutingRequest) -> Decision:
        for name, value in request.headers:
            if name.lower() == self.header and value == self.value:
                return Decision(self.index, "model", f"{self.header.decode()} matched", 0.0)
        return Decision(None, "model", "no match", 0.0)

    def observe(self, request: RoutingRequest, index: int | None, status: int, upstream_s: float | None) -> None:
        self.observed.append((index, status))


class Sleepy:
    """Takes a second to decide: always over any sane budget."""

    def __init__(self, options: Mapping[str, Any], context: StrategyContext) -> None:
        self.name = "sleepy"
        self.budget_s = context.budget_s

    async def decide(self, request: RoutingRequest) -> Decision:
        await asyncio.sleep(1.0)
        return Decision(0, "model", "too late", 0.0)


def broken_factory(options: Mapping[str, Any], context: StrategyContext) -> Any:
    raise RuntimeError("cannot start")


ENTRY_POINTS = """[rusta.ai_strategies]
header_router = tests.support.ai_modules:HeaderRouter
sleepy = tests.support.ai_modules:Sleepy
broken = tests.support.ai_modules:broken_factory
"""


@contextmanager
def installed(folder: Path) -> Iterator[None]:
    """The modules above installed as the package `rusta-example-modules` while the block runs."""
    info = folder / "rusta_example_modules-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rusta-example-modules\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
