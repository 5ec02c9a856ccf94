"""Starting, pinning, probing and stopping the processes a bench run needs, and reading their cost from /proc."""
from __future__ import annotations

import ctypes
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A bench step that cannot go on (a server that never got ready, a port that is taken)."""


def _die_with_parent() -> None:
    # If the harness itself is killed outright, its servers get SIGTERM from the kernel instead of lingering.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Processes:
    """Every process the bench starts, so that each one is stopped, by its id, whatever happens."""

    def __init__(self) -> None:
        self.running: dict[int, subprocess.Popen[Any]] = {}

    def start(self, argv: Sequence[str], *, cpu: str | None = None, env: dict[str, str] | None = None,
              cwd: str | Path | None = None, stdout: IO[Any] | int | None = None,
              stderr: IO[Any] | int | None = None) -> subprocess.Popen[Any]:
        """Start `argv`, pinned to `cpu` (a taskset list such as "0") when given, in its own process group."""
        command = ["taskset", "-c", cpu, *argv] if cpu is not None else list(argv)
        proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.running[proc.pid] = proc
        return proc

    def stop(self, proc: subprocess.Popen[Any], *, grace: float = 10.0, sig: int = signal.SIGTERM) -> bool:
        """Send `sig`, wait up to `grace` seconds, then kill the process group. True when it stopped by itself."""
        self.running.pop(proc.pid, None)
        if proc.poll() is not None:
            return True
        try:
            proc.send_signal(sig)
            proc.wait(timeout=grace)
            clean = True
        except subprocess.TimeoutExpired:
            clean = False
        # Whatever it left behind in its group (workers of a server) goes too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(timeout=5)
        return clean

    def stop_all(self) -> None:
        for proc in list(self.running.values()):
            self.stop(proc, grace=5.0)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens on it. SO_REUSEADDR as the servers set it: the last run's TIME_WAIT sockets do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(preferred: int, taken: set[int]) -> int:
    """`preferred` when nobody listens on it, else a port the kernel picks; `taken` collects the ports in use."""
    if preferred not in taken and port_is_free(preferred):
        taken.add(preferred)
        return preferred
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def http_status(port: int, path: str, timeout: float = 1.0, headers: Sequence[str] = (), method: str = "GET",
                body: str | None = None, tls: bool = False) -> int | None:
    """The status of `method` http://127.0.0.1:port/path (GET unless told; https with `tls`, the certificate not
    verified), or None when nothing answers; `headers` as wrk's -H takes them ("Name: value")."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(header.split(": ", 1) for header in headers))
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_until_ok(proc: subprocess.Popen[Any], checks: Sequence[tuple[int, str]], timeout: float) -> None:
    """Poll until every (port, path) answers 200; BenchError if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    pending = list(checks)
    while pending:
        if proc.poll() is not None:
            raise BenchError(f"exited with status {proc.returncode} before it was ready")
        pending = [(port, path) for port, path in pending if http_status(port, path) != 200]
        if not pending:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(f":{port}{path}" for port, path in pending)
            raise BenchError(f"not ready after {timeout:.0f} s (waiting for {waiting})")
        time.sleep(0.1)


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the fields after it are plain.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            tree.append(pid)
            todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of the given processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / _CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of one process: now (VmRSS) and its peak (VmHWM), in MiB."""

    pid: int
    role: str
    command: str
    vmrss_mib: float
    vmhwm_mib: float


def memory(pid: int, role: str) -> Memory | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return Memory(pid, role, command.strip()[:120], round(values.get("VmRSS", 0.0), 1),
                  round(values.get("VmHWM", 0.0), 1))


def worker_memory(root: int) -> list[Memory]:
    """Memory of a server's worker processes: its children when it forks workers, else the process itself."""
    tree = process_tree(root)
    workers = [pid for pid in tree if pid != root]
    found = [memory(pid, "worker") for pid in workers] if workers else [memory(root, "single process")]
    if workers:
        found.insert(0, memory(root, "main"))
    return [m for m in found if m is not None]
