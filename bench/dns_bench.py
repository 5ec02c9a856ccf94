"""`make bench`, DNS part: dnsperf against a loopback upstream alone, then against Rusta's forwarder in front of it.

The upstream is a small authoritative responder in this file (uvloop, answers precomputed per question), so the
reference and the forwarder run on the same runtime. The query list has 1,000 lines over 100 names: after the
first pass every query is a cache hit, which is what a forwarder mostly serves. The server under test (the
upstream alone, then the forwarder, which asks the upstream only on misses) is pinned to one CPU, dnsperf to
another. Each run is `dnsperf -l SECONDS -v` after a warm-up; queries/s comes from dnsperf's report, p50 and p99
from the latency it prints for every answer.

    .venv/bin/python -m bench.dns_bench [--seconds 10] [--warmup 2] [--outstanding 100]

Everything listens on 127.0.0.1 only; every process started is stopped by its id on the way out. It exits 0
when it could run (a bench reports, it is not a test), and writes `.bench/dns_results.json`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rrset

from bench.procs import BenchError, Processes, cpu_seconds
from protocols.dns import DnsForwarder, Resolver, wire

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / ".bench"
NAMES = 100
LINES = 1000
_REPORT = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "qps": re.compile(r"Queries per second:\s+([0-9.]+)"),
    "seconds": re.compile(r"Run time \(s\):\s+([0-9.]+)"),
}
_VERBOSE = re.compile(r"^> (\S+) \S+ \S+ ([0-9.]+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class DnsperfResult:
    """One dnsperf run; latencies in milliseconds."""

    queries_per_s: float
    completed: int
    lost: int
    seconds: float
    p50_ms: float
    p99_ms: float
    rcodes: dict[str, int]
    cpu_us_per_query: float | None = None


def parse_dnsperf(output: str) -> DnsperfResult:
    values = {}
    for key, pattern in _REPORT.items():
        found = pattern.search(output)
        if found is None:
            raise BenchError(f"cannot read dnsperf's report ({key} missing):\n{output[-2000:]}")
        values[key] = float(found.group(1))
    latencies: list[float] = []
    rcodes: dict[str, int] = {}
    for rcode, latency in _VERBOSE.findall(output):
        rcodes[rcode] = rcodes.get(rcode, 0) + 1
        latencies.append(float(latency) * 1000)
    if not latencies:
        raise BenchError("dnsperf printed no per-query latency (-v)")
    latencies.sort()
    return DnsperfResult(
        queries_per_s=round(values["qps"], 1),
        completed=int(values["completed"]),
        lost=int(values["lost"]),
        seconds=values["seconds"],
        p50_ms=round(latencies[len(latencies) // 2], 3),
        p99_ms=round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3),
        rcodes=rcodes,
    )


# --- the two servers, each run as `python -m bench.dns_bench --role ...` ------------------------------------------
class _Responder(asyncio.DatagramProtocol):
    """The reference upstream: an A record for any name, built once per question, then id and case patched in."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.answers: dict[tuple[bytes, int, int], bytes] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            query = wire.parse_query(data)
        except wire.Unparseable:
            return
        key = (query.qname, query.qtype, query.qclass)
        answer = self.answers.get(key)
        if answer is None:
            message = dns.message.from_wire(data)
            response = dns.message.make_response(message)
            response.use_edns(False)
            name = message.question[0].name
            response.answer.append(dns.rrset.from_text(name, 3600, "IN", "A", "192.0.2.1"))
            answer = self.answers[key] = response.to_wire()
        out = wire.with_client_header(answer, query)
        if query.edns_payload is not None:
            wire.add_opt(out, 1232, query.do)
        self.transport.sendto(bytes(out), addr)


async def _serve(role: str, port: int, upstream_port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if role == "upstream":
        transport, _ = await loop.create_datagram_endpoint(_Responder, local_addr=("127.0.0.1", port))
        await stop.wait()
        transport.close()
        return
    forwarder = DnsForwarder(resolvers=[Resolver("127.0.0.1", upstream_port)])
    await forwarder.start("127.0.0.1", port)
    await stop.wait()
    await forwarder.close()


# --- the run ---------------------------------------------------------------------------------------------------
def free_udp_and_tcp_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BenchError("no port free for both UDP and TCP")


def wait_answering(proc: subprocess.Popen[Any], port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    query = dns.message.make_query("n0.example.test", "A")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server on :{port} exited with status {proc.returncode}")
        try:
            dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise BenchError(f"nothing answered DNS on :{port} within {timeout:.0f} s")


def write_queries(path: Path) -> None:
    names = [f"n{i}.example.test A" for i in range(NAMES)]
    lines = names * (LINES // NAMES)
    random.Random(53).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")


def dnsperf(procs: Processes, port: int, queries: Path, seconds: float, outstanding: int, cpu: str | None,
            log: Path) -> DnsperfResult:
    dnsperf_bin = shutil.which("dnsperf")
    assert dnsperf_bin is not None
    with log.open("wb") as out:
        proc = procs.start([dnsperf_bin, "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", f"{seconds:g}",
                            "-c", "1", "-q", str(outstanding), "-t", "2", "-v"], cpu=cpu, stdout=out,
                           stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            procs.stop(proc, grace=2)
            raise BenchError("dnsperf ran past its time limit") from None
        procs.running.pop(proc.pid, None)
    return parse_dnsperf(log.read_text(errors="replace"))


def measure(procs: Processes, server: subprocess.Popen[Any], port: int, args: argparse.Namespace, queries: Path,
            load_cpu: str | None, name: str) -> DnsperfResult:
    if args.warmup > 0:
        dnsperf(procs, port, queries, args.warmup, args.outstanding, load_cpu, OUT_DIR / f"dns-{name}-warmup.log")
    before = cpu_seconds([server.pid])
    result = dnsperf(procs, port, queries, args.seconds, args.outstanding, load_cpu, OUT_DIR / f"dns-{name}.log")
    used = cpu_seconds([server.pid]) - before
    cpu_us = round(used * 1e6 / result.completed, 1) if result.completed else None
    return DnsperfResult(**{**asdict(result), "cpu_us_per_query": cpu_us})


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.harness import pick_cpus

    proxy_cpu, load_cpu = pick_cpus()
    OUT_DIR.mkdir(exist_ok=True)
    queries = OUT_DIR / "dns-queries.txt"
    write_queries(queries)
    procs = Processes()
    results: dict[str, Any] = {"seconds": args.seconds, "outstanding": args.outstanding,
                               "query_list": f"{LINES} lines over {NAMES} names"}
    try:
        upstream_port, forwarder_port = free_udp_and_tcp_port(), free_udp_and_tcp_port()
        me = [sys.executable, "-m", "bench.dns_bench", "--upstream-port", str(upstream_port)]
        with (OUT_DIR / "dns-upstream.log").open("wb") as log:
            upstream = procs.start([*me, "--role", "upstream", "--port", str(upstream_port)], cpu=proxy_cpu,
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_answering(upstream, upstream_port)
        results["upstream"] = asdict(measure(procs, upstream, upstream_port, args, queries, load_cpu, "upstream"))
        with (OUT_DIR / "dns-forwarder.log").open("wb") as log:
            forwarder = procs.start([*me, "--role", "forwarder", "--port", str(forwarder_port)], cpu=proxy_cpu,
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_answering(forwarder, forwarder_port)
        results["forwarder"] = asdict(measure(procs, forwarder, forwarder_port, args, queries, load_cpu,
                                              "forwarder"))
    finally:
        procs.stop_all()
    return results


def report(results: dict[str, Any]) -> str:
    rows = [("upstream direct", results["upstream"]), ("Rusta DNS forwarder", results["forwarder"])]
    lines = [
        f"DNS: dnsperf -c 1 -q {results['outstanding']}, {results['seconds']:g} s over UDP, "
        f"{results['query_list']} (cache hits after the first pass)",
        f"{'run':<22}{'queries/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'lost':>7}{'CPU µs/query':>14}",
    ]
    for name, row in rows:
        cpu = f"{row['cpu_us_per_query']:.1f}" if row["cpu_us_per_query"] is not None else "-"
        lines.append(f"{name:<22}{row['queries_per_s']:>12,.0f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                     f"{row['lost']:>7}{cpu:>14}")
    ratio = results["forwarder"]["queries_per_s"] / max(results["upstream"]["queries_per_s"], 1.0)
    lines.append(f"forwarder / upstream queries/s: {ratio:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured run before each (2)")
    parser.add_argument("--outstanding", type=int, default=100, help="dnsperf -q: queries in flight (100)")
    parser.add_argument("--role", choices=("upstream", "forwarder"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        import uvloop

        uvloop.run(_serve(args.role, args.port, args.upstream_port))
        return 0
    if shutil.which("dnsperf") is None:
        print("DNS bench skipped: dnsperf is not installed (apt-get install -y dnsperf)")
        return 0
    try:
        results = run(args)
    except BenchError as exc:
        print(f"DNS bench could not run: {exc}")
        return 1
    (OUT_DIR / "dns_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
