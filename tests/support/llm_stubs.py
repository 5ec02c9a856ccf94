"""A fake LLM provider on 127.0.0.1 that speaks OpenAI's, Anthropic's and Ollama's chat formats over HTTP/1.1.

Paths, matched by their ending so a base URL with a path prefix works (https://api.groq.com/openai...):
  .../v1/chat/completions   OpenAI and compatible: `Authorization: Bearer <api_key>` required
  .../v1/messages           Anthropic: `x-api-key: <api_key>` (or `Authorization: Bearer <api_key>`, which the
                            official SDK sends since 2.x) and `anthropic-version` required, and max_tokens
  .../api/chat              Ollama: no key; answers `stream: false` requests only
A missing or wrong key is a 401 in that provider's own error shape. Connections are kept alive.

Use it in a coroutine with `async with LlmStub() as stub:` (it serves on the running loop) or from a thread with
`with LlmStub() as stub:` (it serves on a loop of its own). Per test, tell it to:
  stub.answer = lambda user_text: '{"index": 1}'   what the model says (default: '{"index": 0}')
  stub.usage = (input_tokens, output_tokens)        the token counts it reports
  stub.delay = seconds                              answer late
  stub.hold() / stub.release()                      answer only once released
  stub.rate_limit(retry_after="7"), stub.fail(500), stub.garbage(), stub.close_connections(times=None), stub.behave()
It records every request (`requests`: path, headers, JSON body) and counts `connections`.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.json_stub_server import JsonStubServer


@dataclass
class StubRequest:
    """One request as the stub received it: header names lowercased, the body as parsed JSON (None if not)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _user_text(body: Any) -> str:
    """The last user message's text, whether its content is a string or Anthropic's list of blocks."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(b.get("text", "") for b in content if isinstance(b, dict))
            return content if isinstance(content, str) else ""
    return ""


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[len("Bearer "):] if value.startswith("Bearer ") else None


def _error(wire: str, kind: str, message: str) -> dict[str, Any]:
    """An error body in the provider's own shape."""
    if wire == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    if wire == "ollama":
        return {"error": message}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


class LlmStub(JsonStubServer):
    """The fake provider; see the module docstring."""

    thread_name = "llm-stub"

    def __init__(self, api_key: str = "sk-stub-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.answer: Callable[[str], str] = lambda user_text: '{"index": 0}'
        self.usage = (42, 7)
        self.delay = 0.0
        self.mode = "ok"  # ok, rate_limited, failing, garbage, close
        self.status = 500
        self.retry_after = "7"
        self._closes_left: int | None = None
        self.requests: list[StubRequest] = []
        self._gate: asyncio.Event | None = None

    # --- behaviour ------------------------------------------------------------------------------------------

    def rate_limit(self, retry_after: str = "7") -> None:
        self.mode, self.retry_after = "rate_limited", retry_after

    def fail(self, status: int = 500) -> None:
        self.mode, self.status = "failing", status

    def garbage(self) -> None:
        self.mode = "garbage"

    def close_connections(self, times: int | None = None) -> None:
        """Read each request (or only the next `times`), then close the connection without a word."""
        self.mode, self._closes_left = "close", times

    def behave(self) -> None:
        self.mode, self.delay = "ok", 0.0

    def hold(self) -> None:
        """Answer nothing until release()."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._new_gate)

    def release(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._open_gate)

    def _new_gate(self) -> None:
        self._gate = asyncio.Event()

    def _open_gate(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        read = await self.read_request(reader)
        if read is None:
            return False
        method, path, headers, body = read
        self.requests.append(StubRequest(method, path, headers, body))
        if self.mode == "close":
            if self._closes_left is not None:
                self._closes_left -= 1
                if self._closes_left <= 0:
                    self.mode = "ok"
            return False
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._gate is not None:
            await self._gate.wait()
        status, extra, payload = self._respond(path, headers, body)
        content_type = "text/html" if self.mode == "garbage" and status == 200 else "application/json"
        head_out = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", f"content-type: {content_type}",
                    f"content-length: {len(payload)}", *(f"{n}: {v}" for n, v in extra)]
        writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    def _respond(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        path = path.split("?", 1)[0]
        if path.endswith("/v1/chat/completions"):
            wire = "openai"
        elif path.endswith("/v1/messages"):
            wire = "anthropic"
        elif path.endswith("/api/chat"):
            wire = "ollama"
        else:
            return 404, [], json.dumps({"error": f"no such path {path}"}).encode()
        if wire == "openai" and headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, [], json.dumps(_error(wire, "invalid_api_key", "Incorrect API key provided.")).encode()
        if wire == "anthropic" and self.api_key not in (headers.get("x-api-key"), _bearer(headers)):
            return 401, [], json.dumps(_error(wire, "authentication_error", "invalid x-api-key")).encode()
        problem = self._invalid(wire, headers, body)
        if problem:
            return 400, [], json.dumps(_error(wire, "invalid_request_error", problem)).encode()
        if self.mode == "rate_limited":
            kind = "rate_limit_error" if wire == "anthropic" else "rate_limit_exceeded"
            return 429, [("retry-after", self.retry_after)], json.dumps(_error(wire, kind, "Slow down.")).encode()
        if self.mode == "failing":
            kind = "api_error" if wire == "anthropic" else "server_error"
            return self.status, [], json.dumps(_error(wire, kind, "The server had an error.")).encode()
        if self.mode == "garbage":
            return 200, [], b"<html><body>502 Bad Gateway</body></html>"
        text = self.answer(_user_text(body))
        return 200, [], json.dumps(self._completion(wire, body["model"], text)).encode()

    @staticmethod
    def _invalid(wire: str, headers: dict[str, str], body: Any) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return "model: field required"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages: field required"
        if wire == "anthropic":
            if "anthropic-version" not in headers:
                return "anthropic-version: header is required"
            if not isinstance(body.get("max_tokens"), int):
                return "max_tokens: field required"
        if wire == "ollama" and body.get("stream") is not False:
            return "this stub answers stream: false requests only"
        return ""

    def _completion(self, wire: str, model: str, text: str) -> dict[str, Any]:
        prompt_tokens, answer_tokens = self.usage
        if wire == "anthropic":
            return {
                "id": "msg_stub", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": answer_tokens},
            }
        if wire == "ollama":
            return {
                "model": model, "created_at": "2026-12-01T12:00:00.000000Z",
                "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop",
                "total_duration": 1000, "prompt_eval_count": prompt_tokens, "eval_count": answer_tokens,
            }
        return {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 1764590400, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": answer_tokens,
                      "total_tokens": prompt_tokens + answer_tokens},
        }
