"""Plugins as third parties ship them (entry point group `rusta.plugins`): the example package in
examples/rusta-example-plugin and faulty ones, installed the way pip does, a `.dist-info` with `entry_points.txt`
on sys.path (so the tests do not depend on the example being pip-installed in the venv)."""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from protocols.plugins import BalanceView, BodyView, RequestView, ResponseView

EXAMPLE_SRC = Path(__file__).resolve().parents[2] / "examples" / "rusta-example-plugin" / "src"


class Raising:
    """Raises in every phase it has."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.phase = str(config.get("phase", "access"))

    async def access(self, view: RequestView) -> None:
        raise RuntimeError("the raising plugin raised")

    async def response(self, view: ResponseView) -> None:
        raise RuntimeError("the raising plugin raised")


class Sleeping:
    """Sleeps `sleep_ms` (default one second) in its access phase: past any sane budget."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.sleep_s = float(config.get("sleep_ms", 1000)) / 1000

    async def access(self, view: RequestView) -> None:
        await asyncio.sleep(self.sleep_s)


class Recording:
    """Remembers what each phase saw, and tags the response head."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.seen: list[tuple[str, Any]] = []

    async def request(self, view: RequestView) -> None:
        self.seen.append(("request", view))

    async def access(self, view: RequestView) -> None:
        self.seen.append(("access", view))

    async def upstream(self, view: RequestView) -> None:
        self.seen.append(("upstream", view))

    async def response(self, view: ResponseView) -> Any:
        from protocols.plugins import Modify

        self.seen.append(("response", view))
        return Modify(set=(("X-Recorded", str(view.status)),), remove=("x-backend-secret",))

    async def log(self, view: ResponseView) -> None:
        self.seen.append(("log", view))


class Steering:
    """Chooses the backend the request's X-Backend-Index names (balance), and remembers where each went (log)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.outcomes: list[tuple[int, int | None, float | None]] = []

    async def balance(self, view: BalanceView) -> Any:
        from protocols.plugins import Choose

        wanted = view.request.header("x-backend-index")
        return Choose(int(wanted), "header") if wanted is not None else None

    def log(self, view: ResponseView) -> None:
        self.outcomes.append((view.status, view.backend, view.upstream_s))


class Redacting:
    """Replaces every `secret` in a response body (body phase)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.seen: list[int] = []

    async def body(self, view: BodyView) -> Any:
        from protocols.plugins import Replace

        self.seen.append(len(view.body))
        return Replace(view.body.replace(b"secret", b"[redacted]")) if b"secret" in view.body else None


class Refusing:
    """Refuses a request without an X-Ticket header with the gateway's own 4xx error (access phase)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        pass

    async def access(self, view: RequestView) -> None:
        from protocols.errors import GatewayError

        if view.header("x-ticket") is None:
            raise GatewayError(402, "ticket_required", "Send a ticket in X-Ticket.")


class BalanceRaising:
    """Raises in its balance phase."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        pass

    async def balance(self, view: BalanceView) -> None:
        raise RuntimeError("the balance phase raised")


def broken_factory(config: Mapping[str, Any]) -> Any:
    raise RuntimeError("cannot start")


FAULTY_ENTRY_POINTS = """[rusta.plugins]
raising = tests.support.plugin_packages:Raising
sleeping = tests.support.plugin_packages:Sleeping
recording = tests.support.plugin_packages:Recording
broken = tests.support.plugin_packages:broken_factory
steering = tests.support.plugin_packages:Steering
redacting = tests.support.plugin_packages:Redacting
refusing = tests.support.plugin_packages:Refusing
balance_raising = tests.support.plugin_packages:BalanceRaising
"""
EXAMPLE_ENTRY_POINTS = """[rusta.plugins]
example = rusta_example_plugin:factory
"""


def _dist_info(folder: Path, name: str, entry_points: str) -> None:
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@contextmanager
def installed(folder: Path) -> Iterator[None]:
    """The example package and the faulty plugins above installed while the block runs."""
    _dist_info(folder, "rusta-example-plugin", EXAMPLE_ENTRY_POINTS)
    _dist_info(folder, "rusta-faulty-plugins", FAULTY_ENTRY_POINTS)
    paths = [str(folder), str(EXAMPLE_SRC)]
    sys.path[:0] = paths
    try:
        yield
    finally:
        for path in paths:
            sys.path.remove(path)


@contextmanager
def installed_for_gateway(folder: Path) -> Iterator[dict[str, str]]:
    """`installed`, here and in `runproxy`'s processes: yields the environment (PYTHONPATH) to start them with."""
    with installed(folder):
        paths = [str(folder), str(EXAMPLE_SRC), str(Path(__file__).resolve().parents[2])]
        yield {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
