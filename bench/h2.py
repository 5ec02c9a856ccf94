"""Running h2load (Debian's nghttp2-client) for the HTTP/2 runs and reading its report and per-request log.

h2load prints req/s and mean/sd latencies but no percentiles, so each run also writes `--log-file` (one line per
request of the measured period: start time, status, elapsed µs) and p50/p75/p90/p99 are read from it."""
from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Processes

_FINISHED = re.compile(r"^finished in ([0-9.]+)s, ([0-9.]+) req/s", re.MULTILINE)
_REQUESTS = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", re.MULTILINE)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.MULTILINE)
PERCENTILES = (50, 75, 90, 99)


class H2loadError(RuntimeError):
    """h2load failed, measured nothing, or printed something this parser does not understand."""


@dataclass(frozen=True, slots=True)
class H2loadResult:
    """What one h2load run measured; latencies in milliseconds, read from its log file."""

    requests_per_s: float
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    failed: int
    non_2xx: int

    @property
    def errors(self) -> int:
        return self.failed + self.non_2xx


def percentiles_ms(elapsed_us: list[int]) -> dict[str, float]:
    """p50, p75, p90 and p99 (nearest rank) of request times given in microseconds, in milliseconds."""
    if not elapsed_us:
        raise H2loadError("h2load logged no request")
    ordered = sorted(elapsed_us)
    return {f"p{p}": ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)] / 1000 for p in PERCENTILES}


def read_log(text: str) -> list[int]:
    """The elapsed µs column of h2load's --log-file (tab-separated: start µs, status, elapsed µs)."""
    elapsed = []
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[2].isdigit():
            elapsed.append(int(fields[2]))
    return elapsed


def parse(output: str, log_text: str) -> H2loadResult:
    """h2load's text report and its log file: throughput and errors from the first, percentiles from the second."""
    finished, requests, status = _FINISHED.search(output), _REQUESTS.search(output), _STATUS.search(output)
    if finished is None or requests is None or status is None:
        raise H2loadError(f"cannot read h2load's report:\n{output[-2000:]}")
    _total, _started, done, succeeded, failed, errored, timeout = map(int, requests.groups())
    if succeeded == 0:
        raise H2loadError(f"h2load got no successful request:\n{output[-2000:]}")
    _2xx, *others = map(int, status.groups())
    return H2loadResult(
        requests_per_s=float(finished.group(2)),
        requests=done,
        seconds=float(finished.group(1)),
        latency_ms=percentiles_ms(read_log(log_text)),
        failed=failed + errored + timeout,
        non_2xx=sum(others),
    )


def run(procs: Processes, url: str, *, seconds: float, warmup: float, clients: int, streams: int,
        log_file: Path, cpu: str | None = None) -> H2loadResult:
    """One bounded h2load run (`-D`, after `--warm-up-time`), one thread: `clients` connections with `streams`
    concurrent streams each. An http:// URL is HTTP/2 with prior knowledge, https:// HTTP/2 by ALPN."""
    argv = ["h2load", "-t1", f"-c{clients}", f"-m{streams}", f"-D{seconds:g}", "--log-file", str(log_file)]
    if warmup > 0:
        argv.append(f"--warm-up-time={warmup:g}")
    argv.append(url)
    log_file.unlink(missing_ok=True)
    proc = procs.start(argv, cpu=cpu, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=seconds + warmup + 30)
    except subprocess.TimeoutExpired:
        raise H2loadError(f"h2load did not stop after {seconds + warmup + 30:g} s") from None
    finally:
        procs.stop(proc, grace=1.0)
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        raise H2loadError(f"h2load exited with status {proc.returncode}:\n{text[-2000:]}")
    return parse(text, log_file.read_text() if log_file.exists() else "")
