"""Figures of all the worker processes of a gateway combined: one file per live worker in a shared folder.

`runproxy` forks workers that share the ports, so a scrape lands on any one of them. Each worker writes its
cumulative totals (and its breakers' states, what AI routing did: protocols.ai.records' snapshot, and what backend
discovery did: protocols.discovery.figures', its plugins' counters: protocols.plugins.snapshot(), and its LLM
routes': protocols.llm.metrics.snapshot()) to
`<folder>/<pid>.json` about once a second; `combined()` adds up the files of the workers still alive. A dead
worker's counters are folded into `dead.json` (under a file lock) before its file goes, so counters never go
backwards when a worker is replaced; its gauges and its recent AI decisions are dropped. The supervisor empties
the folder when it starts: a new gateway starts from zero, as Prometheus expects.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols.ai.records import MINUTES, SHOWN_RECENT
from protocols.discovery import figures as discovery_figures
from protocols.llm import metrics as llm_metrics
from protocols.recorder import Totals

DEAD_FILE = "dead.json"
LOCK_FILE = ".lock"
# Breaker states as rusta_circuit_breaker_state reports them; the worst over the workers wins.
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
# The counter sections of an AI snapshot (protocols.ai.records), each with how many leading fields of a row are
# its key; the rest of the row are numbers (or a histogram's list of them) that add up over the workers.
AI_COUNTERS = {"decisions": 3, "decision_seconds": 2, "fallbacks": 3, "agreement": 1, "llm": 2, "anomalies": 2,
               "minutes": 3}
AI_ROWS = ("recent", "verdicts")  # the last decisions and verdicts: rows with an `at`, not counters
# The plugins' counters (protocols.plugins.snapshot): calls and seconds by (plugin, phase), errors by kind too.
PLUGIN_COUNTERS = {"calls": 2, "errors": 3, "seconds": 2}
# The LLM routes' counters (protocols.llm.metrics.snapshot): requests, tokens, cost, histograms, fallbacks.
LLM_COUNTERS = llm_metrics.COUNTER_WIDTHS


def empty_plugins() -> dict[str, Any]:
    """The plugins' section of a gateway whose plugins ran no phase yet."""
    return {name: [] for name in PLUGIN_COUNTERS}


def empty_ai() -> dict[str, Any]:
    """The AI section of a gateway that decided nothing yet (records.snapshot()'s shape, every list empty)."""
    return {name: [] for name in (*AI_COUNTERS, *AI_ROWS)}


class CounterSums:
    """Counter sections of several workers added up into one of the same shape: each named list holds rows whose
    first `widths[name]` fields are the key and the rest numbers (or a histogram's list of them), summed."""

    def __init__(self, widths: dict[str, int]) -> None:
        self.widths = widths
        self.counters: dict[str, dict[tuple[Any, ...], list[Any]]] = {name: {} for name in widths}

    def add(self, section: dict[str, Any], *, rows: bool = True) -> None:
        """Add one worker's section (`rows`: see AiSums)."""
        for name, width in self.widths.items():
            target = self.counters[name]
            for row in section.get(name, []):
                key, values = tuple(row[:width]), list(row[width:])
                target[key] = _plus(target[key], values) if key in target else values

    def as_json(self) -> dict[str, Any]:
        return {name: [[*key, *values] for key, values in sorted(counters.items())]
                for name, counters in self.counters.items()}


class AiSums(CounterSums):
    """AI snapshots of several workers added up into one of the same shape: counters summed (histograms bucket
    by bucket), the recent decisions and verdicts merged by time, the last SHOWN_RECENT of each kept."""

    def __init__(self) -> None:
        super().__init__(AI_COUNTERS)
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in AI_ROWS}

    def add(self, section: dict[str, Any], *, rows: bool = True) -> None:
        """Add one worker's section; `rows=False` takes its counters only (a dead worker's)."""
        super().add(section)
        if rows:
            for name in AI_ROWS:
                self.rows[name] += section.get(name, [])

    def forget_minutes_before(self, oldest: float) -> None:
        """Drop the per-minute counts older than `oldest` (epoch s): the page shows the last MINUTES only."""
        minutes = self.counters["minutes"]
        for key in [key for key in minutes if key[0] < oldest]:
            del minutes[key]

    def as_json(self) -> dict[str, Any]:
        document = super().as_json()
        for name, rows in self.rows.items():
            document[name] = sorted(rows, key=lambda row: row["at"])[-SHOWN_RECENT:]
        return document


def _plus(left: Any, right: Any) -> Any:
    """Numbers added, lists (a histogram's buckets) added element by element."""
    if isinstance(left, list):
        longer, shorter = (left, right) if len(left) >= len(right) else (right, left)
        return [_plus(value, shorter[index]) if index < len(shorter) else value
                for index, value in enumerate(longer)]
    return left + right


class DiscoverySums:
    """Discovery snapshots of several workers added up into one of the same shape: lookups summed; of the
    names, the most addresses any worker uses and the latest times (each worker resolves on its own, and they
    agree but for the moments a change reaches one before another)."""

    def __init__(self) -> None:
        self.lookups: dict[tuple[str, str, str], int] = {}
        self.names: dict[tuple[str, str], list[Any]] = {}

    def add(self, section: dict[str, Any], *, gauges: bool = True) -> None:
        """Add one worker's section; `gauges=False` takes its lookup counters only (a dead worker's)."""
        for route, name, outcome, count in section.get("lookups", []):
            key = (route, name, outcome)
            self.lookups[key] = self.lookups.get(key, 0) + count
        if gauges:
            for route, name, addresses, changed_at, resolved_at in section.get("names", []):
                row = self.names.get((route, name))
                self.names[(route, name)] = [addresses, changed_at, resolved_at] if row is None else [
                    max(row[0], addresses), discovery_figures.latest(row[1], changed_at),
                    discovery_figures.latest(row[2], resolved_at)]

    def as_json(self) -> dict[str, Any]:
        return {"lookups": [[*key, count] for key, count in sorted(self.lookups.items())],
                "names": [[*key, *row] for key, row in sorted(self.names.items())]}


@dataclass
class Combined:
    """The sum of every worker's totals, the worst breaker state per (route, backend), and who took part."""

    totals: Totals = field(default_factory=Totals)
    breakers: dict[tuple[str, str], int] = field(default_factory=dict)
    workers: int = 0
    written_at: float = 0.0  # the newest file's time
    ai: dict[str, Any] = field(default_factory=empty_ai)  # AI routing's record, records.snapshot()'s shape
    discovery: dict[str, Any] = field(default_factory=discovery_figures.empty)  # figures.snapshot()'s shape
    plugins: dict[str, Any] = field(default_factory=empty_plugins)  # protocols.plugins.snapshot()'s shape
    llm: dict[str, Any] = field(default_factory=llm_metrics.empty)  # protocols.llm.metrics.snapshot()'s shape
    # What the live workers that report their CPU time handled, and in how many CPU seconds: their measured
    # requests per second of busy time (metrics.advice.capacity).
    busy_requests: int = 0
    busy_seconds: float = 0.0


def folder_for(instance_dir: Path | str) -> Path:
    """The folder of one gateway instance's workers (settings.INSTANCE_DIR): a gateway started with another
    database has its own, so neither adds up the other's figures."""
    return Path(instance_dir) / "metrics-proc"


def reset(folder: Path) -> None:
    """Empty the folder (a gateway starting): figures of an earlier run must not be added to this one's."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.suffix == ".json":
            entry.unlink(missing_ok=True)


def write(folder: Path, totals: Totals, breakers: list[dict[str, Any]], now: float,
          pid: int | None = None, ai: dict[str, Any] | None = None, discovery: dict[str, Any] | None = None,
          plugins: dict[str, Any] | None = None, llm: dict[str, Any] | None = None,
          cpu_s: float | None = None) -> None:
    """Replace this worker's file atomically (readers see the old figures or the new, never half a file).

    `ai` is the worker's AI routing snapshot (protocols.ai.records.snapshot()), `discovery` its backend
    discovery's (protocols.discovery.figures.snapshot()), `plugins` its plugins' counters
    (protocols.plugins.snapshot()), `llm` its LLM routes' (protocols.llm.metrics.snapshot()); None writes an
    empty one. `cpu_s` is the CPU time the worker has used (time.process_time()), its busy time."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {"pid": pid or os.getpid(), "at": now, "totals": totals.as_json(), "breakers": breakers,
                "ai": ai if ai is not None else empty_ai(),
                "discovery": discovery if discovery is not None else discovery_figures.empty(),
                "plugins": plugins if plugins is not None else empty_plugins(),
                "llm": llm if llm is not None else llm_metrics.empty()}
    if cpu_s is not None:
        document["cpu_s"] = cpu_s
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, separators=(",", ":"))
        os.replace(temporary, folder / f"{pid or os.getpid()}.json")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove(folder: Path, pid: int | None = None) -> None:
    """A worker stopping cleanly: fold its counters into dead.json and remove its file."""
    path = folder / f"{pid or os.getpid()}.json"
    with _locked(folder):
        document = _read(path)
        if document is not None:
            _bury(folder, document)
        path.unlink(missing_ok=True)


def combined(folder: Path, *, extra: Totals | None = None) -> Combined:
    """Every live worker's figures added up, plus the counters of workers that died (see the docstring).

    `extra` is added as if it were one more worker (a process that records but writes no file, as in tests).
    """
    result = Combined()
    ai = AiSums()
    discovery = DiscoverySums()
    plugins = CounterSums(PLUGIN_COUNTERS)
    llm = CounterSums(LLM_COUNTERS)
    if extra is not None:
        result.totals.add(extra)
    if not folder.is_dir():
        return result
    dead: list[Path] = []
    for path in sorted(folder.glob("*.json")):
        if path.name == DEAD_FILE:
            continue
        if not path.stem.isdigit():
            continue
        if not _alive(int(path.stem)):
            dead.append(path)
            continue
        document = _read(path)
        if document is None:
            continue
        result.workers += 1
        result.written_at = max(result.written_at, float(document.get("at", 0.0)))
        totals = Totals.from_json(document["totals"])
        result.totals.add(totals)
        if float(document.get("cpu_s") or 0.0) > 0:
            result.busy_requests += sum(totals.requests.values())
            result.busy_seconds += float(document["cpu_s"])
        ai.add(document.get("ai") or {})
        discovery.add(document.get("discovery") or {})
        plugins.add(document.get("plugins") or {})
        llm.add(document.get("llm") or {})
        for row in document.get("breakers", []):
            key = (row["route"], row["backend"])
            value = BREAKER_VALUES.get(row["state"], 0)
            result.breakers[key] = max(result.breakers.get(key, 0), value)
    if dead:
        with _locked(folder):
            for path in dead:
                document = _read(path)
                if document is not None:
                    _bury(folder, document)
                path.unlink(missing_ok=True)
    buried = _read(folder / DEAD_FILE)
    if buried is not None:
        result.totals.add(Totals.from_json(buried["totals"]), gauges=False)
        ai.add(buried.get("ai") or {}, rows=False)
        discovery.add(buried.get("discovery") or {}, gauges=False)
        plugins.add(buried.get("plugins") or {})
        llm.add(buried.get("llm") or {})
    result.ai = ai.as_json()
    result.discovery = discovery.as_json()
    result.plugins = plugins.as_json()
    result.llm = llm.as_json()
    return result


def _bury(folder: Path, document: dict[str, Any]) -> None:
    """Add a finished worker's counters to dead.json (the caller holds the lock).

    Its AI counters go too, per-minute counts included (the decision mix of the last hour must not dip when a
    worker is replaced); those older than the hour before its last write are dropped, so the file stays small.
    """
    path = folder / DEAD_FILE
    buried = _read(path)
    totals = Totals.from_json(buried["totals"]) if buried else Totals()
    totals.add(Totals.from_json(document["totals"]), gauges=False)
    ai = AiSums()
    if buried:
        ai.add(buried.get("ai") or {}, rows=False)
    ai.add(document.get("ai") or {}, rows=False)
    ai.forget_minutes_before(int(float(document.get("at", 0.0)) // 60) * 60 - (MINUTES - 1) * 60)
    discovery = DiscoverySums()  # its lookup counters only: how many addresses it used is no longer true
    if buried:
        discovery.add(buried.get("discovery") or {}, gauges=False)
    discovery.add(document.get("discovery") or {}, gauges=False)
    plugins = CounterSums(PLUGIN_COUNTERS)
    llm = CounterSums(LLM_COUNTERS)
    for source in (buried or {}, document):
        plugins.add(source.get("plugins") or {})
        llm.add(source.get("llm") or {})
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    with os.fdopen(handle, "w") as stream:
        json.dump({"totals": totals.as_json(), "ai": ai.as_json(), "discovery": discovery.as_json(),
                   "plugins": plugins.as_json(), "llm": llm.as_json()}, stream, separators=(",", ":"))
    os.replace(temporary, path)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # cannot happen with os.replace, but a hand-edited folder must not break /metrics


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
