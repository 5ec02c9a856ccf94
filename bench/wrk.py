"""Running wrk and reading its `--latency` report."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Processes

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([0-9.]+)(us|ms|s|m|h)"
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+" + _DURATION + r"\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in " + _DURATION, re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk failed or printed something this parser does not understand."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests_per_s: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["p50"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["p99"]

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse(output: str) -> WrkResult:
    """Read wrk's text report (run with --latency)."""
    rate = _RATE.search(output)
    total = _TOTAL.search(output)
    percentiles = {f"p{p}": _ms(v, u) for p, v, u in _PERCENTILE.findall(output)}
    if rate is None or total is None or "p50" not in percentiles or "p99" not in percentiles:
        raise WrkError(f"cannot read wrk's report:\n{output}")
    socket_errors: dict[str, int] = {}
    found = _SOCKET_ERRORS.search(output)
    if found:
        socket_errors = dict(zip(("connect", "read", "write", "timeout"), map(int, found.groups()), strict=True))
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
        latency_ms=percentiles,
        socket_errors=socket_errors,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def request_script(method: str, body: str) -> str:
    """A wrk Lua script that sends every request with `method` and `body` (wrk's -H still adds the headers).

    The body goes in a Lua long bracket, which needs no escaping as long as the body lacks its closing mark."""
    if "]==]" in body:
        raise WrkError("a request body containing ]==] cannot be put in the wrk script")
    return f'wrk.method = "{method}"\nwrk.body = [==[{body}]==]\n'


def run(procs: Processes, url: str, *, seconds: float, connections: int, threads: int = 1,
        cpu: str | None = None, headers: tuple[str, ...] = (), script: Path | None = None) -> WrkResult:
    """One bounded wrk run (`-d`), keep-alive, pinned to `cpu`; it stops by itself. `script`: a wrk Lua script
    (`request_script`) for requests other than a bodiless GET."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    for header in headers:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    proc = procs.start(argv, cpu=cpu, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk did not stop after {seconds + 30:g} s") from None
    finally:
        procs.stop(proc, grace=1.0)
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        raise WrkError(f"wrk exited with status {proc.returncode}:\n{text}")
    return parse(text)
