"""One JSON line per proxied request on stdout, buffered and written in batches off the request path."""
from __future__ import annotations

import asyncio
import sys
import time
from json.encoder import encode_basestring_ascii as _quote
from typing import TextIO

# A request stores a tuple; formatting happens at flush time, once per batch.
Entry = tuple[float, str, str, str, "str | None", "str | None", int, float, int, int, str, "str | None",
              "str | None", "tuple[str, str] | None", "str | None", "int | None"]

FLUSH_INTERVAL = 0.05
MAX_PENDING = 2048


class AccessLog:
    """Collects access-log entries and writes them every FLUSH_INTERVAL seconds (or MAX_PENDING entries).

    Keys: time (ISO 8601 UTC, request start), request_id, method, path (without query: queries carry tokens),
    route, backend, status, duration_ms, bytes_in, bytes_out, client, `error` (the gateway error type) only
    on lines where the gateway answered or cut the response short, and `trace_id` (the W3C trace id sent
    upstream, protocols.tracing) on lines of requests that reached a route; `ai_strategy` and `ai_source`
    (model, llm, cache or fallback) on lines of routes with an ai_policy; `consumer` on every line: the consumer
    an API key or a JWT subject resolved to, null when none did; `grpc_status` on lines of gRPC calls (the
    status their client got). Call `flush()` at shutdown.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = FLUSH_INTERVAL,
                 max_pending: int = MAX_PENDING) -> None:
        self._stream = stream  # None: whatever sys.stdout is at flush time
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[Entry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._second_text = ""

    def record(self, started: float, request_id: str, method: str, path: str, route: str | None,
               backend: str | None, status: int, duration: float, bytes_in: int, bytes_out: int, client: str,
               error: str | None = None, trace_id: str | None = None, ai: tuple[str, str] | None = None,
               consumer: str | None = None, grpc_status: int | None = None) -> None:
        pending = self._pending
        pending.append((started, request_id, method, path, route, backend, status, duration, bytes_in, bytes_out,
                        client, error, trace_id, ai, consumer, grpc_status))
        if len(pending) >= self.max_pending:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self.flush)

    def flush(self) -> None:
        """Write every pending line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = self._pending
        if not pending:
            return
        self._pending = []
        stream = self._stream or sys.stdout
        stream.write("".join([self._format(entry) for entry in pending]))
        stream.flush()

    def _format(self, entry: Entry) -> str:
        (started, request_id, method, path, route, backend, status, duration, bytes_in, bytes_out, client, error,
         trace_id, ai, consumer, grpc_status) = entry
        line = (
            f'{{"time":"{self._timestamp(started)}","request_id":{_quote(request_id)},"method":{_quote(method)},'
            f'"path":{_quote(path)},"route":{"null" if route is None else _quote(route)},'
            f'"backend":{"null" if backend is None else _quote(backend)},"status":{status},'
            f'"duration_ms":{duration * 1000:.3f},"bytes_in":{bytes_in},"bytes_out":{bytes_out},'
            f'"client":{_quote(client)},"consumer":{"null" if consumer is None else _quote(consumer)}'
        )
        if error is not None:
            line += f',"error":{_quote(error)}'
        if trace_id is not None:
            line += f',"trace_id":"{trace_id}"'  # 32 lower-case hex digits: nothing to escape
        if ai is not None:
            line += f',"ai_strategy":{_quote(ai[0])},"ai_source":{_quote(ai[1])}'
        if grpc_status is not None:
            line += f',"grpc_status":{grpc_status}'
        return line + "}\n"

    def _timestamp(self, started: float) -> str:
        second = int(started)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((started - second) * 1000):03d}Z"
