"""A real OTLP/HTTP collector on 127.0.0.1 for the suite: records every POSTed body, in a background thread.

`with OtlpCollector() as collector:` listens on `collector.url` (set OTEL_EXPORTER_OTLP_ENDPOINT to it);
`collector.posts` are the requests it took (path, headers, parsed JSON), `collector.spans()` every span in
them, `collector.wait_for_spans(n)` waits for n. `collector.fail(503, times=1)` answers the next POSTs with
that status (and records them in `collector.refused`); `hold()` keeps the next POSTs waiting for an answer
until `release()`, as a slow collector; `stop()` closes the port, as a collector that is down.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    """One export request as the collector received it."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON document


class OtlpCollector:
    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.refused: list[Post] = []
        self._failures: list[int] = []
        self._changed = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self.arrived = threading.Event()  # a POST came in (set before a held one waits)
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real collector

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null"))
                collector.arrived.set()
                collector._gate.wait(10)
                status = collector._record(post)
                body = b"{}" if status == 200 else b'{"message": "try again"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if status != 200:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="test-otlp-collector",
                                        daemon=True)

    def __enter__(self) -> OtlpCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.release()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next `times` POSTs with `status` instead of 200."""
        with self._changed:
            self._failures.extend([status] * times)

    def hold(self) -> None:
        """Keep the POSTs that arrive from now on unanswered until `release()` (at most 10 s)."""
        self.arrived.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def spans(self) -> list[dict[str, Any]]:
        with self._changed:
            return [span for post in self.posts for span in _spans(post.body)]

    def resources(self) -> list[dict[str, Any]]:
        with self._changed:
            return [rs["resource"] for post in self.posts for rs in post.body["resourceSpans"]]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(spans := [s for post in self.posts for s in _spans(post.body)]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the collector got {len(spans)} span(s) within {timeout} s, not {count}")
                self._changed.wait(left)
            return spans

    def _record(self, post: Post) -> int:
        with self._changed:
            if self._failures:
                self.refused.append(post)
                self._changed.notify_all()
                return self._failures.pop(0)
            self.posts.append(post)
            self._changed.notify_all()
            return 200


def _spans(document: Any) -> list[dict[str, Any]]:
    return [span for rs in document["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]]
