"""Loopback LLM providers that stream: OpenAI, Anthropic and Ollama on one 127.0.0.1 port, with scripted failures.

One server speaks all three wire formats, told apart by path (matched by its ending, so a base URL with a path
prefix works), as tests/support/llm_stubs.py's LlmStub does; a test wanting two targets starts two stubs.
  POST .../v1/chat/completions  OpenAI, `Authorization: Bearer <api_key>`; stream or not; stream_options honoured
  POST .../v1/embeddings        OpenAI; float or base64 vectors (the official SDK asks for base64)
  GET  .../v1/models            OpenAI's list, or Anthropic's when an anthropic-version header is sent
  POST .../v1/messages          Anthropic, `x-api-key` (or Bearer, as the SDK sends since 2.x) and anthropic-version
  POST .../api/chat             Ollama, no key; NDJSON stream unless `stream: false`
  POST .../api/embed            Ollama;  GET .../api/tags lists the models
What each emits is in tests/support/llm_wire.py. Errors come in each provider's JSON shape; a bad key is a 401, a
request the real provider refuses (no model, no messages, a system role sent to Anthropic...) is a 400.

Use it from a thread (`with ProviderStub() as stub:`) or a coroutine (`async with ProviderStub() as stub:`).
Script it per test:
  stub.answer = "text" or a function of the ProviderRequest    stub.tool_calls = [ToolCall("name", {...})]
  stub.usage = Usage(input=, output=, cached_input=)           stub.models = [...]
  stub.first_token_delay = s   a stream's head and preamble go out, then this pause before the first content
                               frame; a whole answer waits this long before its head
  stub.chunk_delay = s         a pause between content frames
  stub.rate_limit(retry_after="1", times=None)  429      stub.fail(status=500, times=None)
  stub.context_overflow(times=None)  the provider's "prompt too long" 400
  stub.cut_after(n, times=None)  the connection is closed after n content frames, the usage never sent (a
                                 non-streamed answer is cut halfway through its body)
  stub.behave()                  forget every scripted failure and delay
Failures queue up in the order scripted; each applies to `times` requests (None: to all from then on) and then
gives way to the next. They apply to chats and embeddings only: model listings always answer.
Every request is recorded in `stub.requests` (path, headers, JSON body, and what was answered and streamed).
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from tests.support.json_stub_server import JsonStubServer
from tests.support.llm_stubs import _bearer, _user_text
from tests.support.llm_wire import (
    Answer,
    Frame,
    ToolCall,
    Usage,
    anthropic_frames,
    anthropic_message,
    anthropic_models,
    error_body,
    ollama_chat,
    ollama_embed,
    ollama_frames,
    ollama_tags,
    openai_completion,
    openai_embeddings,
    openai_frames,
    openai_models,
)

__all__ = ["ProviderRequest", "ProviderStub", "ToolCall", "Usage"]

# (method, path ending) -> (wire, endpoint); GET /v1/models is Anthropic's when the request says anthropic-version.
ENDPOINTS = {
    ("POST", "/v1/chat/completions"): ("openai", "chat"),
    ("POST", "/v1/embeddings"): ("openai", "embeddings"),
    ("GET", "/v1/models"): ("openai", "models"),
    ("POST", "/v1/messages"): ("anthropic", "chat"),
    ("POST", "/api/chat"): ("ollama", "chat"),
    ("POST", "/api/embed"): ("ollama", "embeddings"),
    ("GET", "/api/tags"): ("ollama", "models"),
}
ROLES = {"openai": {"system", "developer", "user", "assistant", "tool", "function"},
         "anthropic": {"user", "assistant"}, "ollama": {"system", "user", "assistant", "tool"}}
STREAM_TYPES = {"openai": "text/event-stream; charset=utf-8", "anthropic": "text/event-stream; charset=utf-8",
                "ollama": "application/x-ndjson"}
OVERFLOW = {"openai": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                      "131072 tokens. Please reduce the length of the messages.",
            "anthropic": "prompt is too long: 210000 tokens > 200000 maximum",
            "ollama": "the input length exceeds the context length"}


@dataclass
class ProviderRequest:
    """One request as received (header names lowercased, the body parsed, None if not JSON), and what it got:
    `status`, the answer text actually sent in `streamed_text`, `cut` when closed early, and when (time.monotonic())
    the head went out and each content frame after it, so pauses are measured where they are made."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    wire: str = ""
    endpoint: str = ""
    status: int = 0
    streamed_text: str = ""
    cut: bool = False
    head_at: float = 0.0
    content_at: list[float] = field(default_factory=list)

    @property
    def content_frames(self) -> int:
        return len(self.content_at)

    @property
    def user_text(self) -> str:
        """The last user message's text."""
        return _user_text(self.body)

    @property
    def stream(self) -> bool:
        default = self.wire == "ollama" and self.endpoint == "chat"  # Ollama streams unless told not to
        return bool(self.body.get("stream", default)) if isinstance(self.body, dict) else False


@dataclass
class _Fault:
    kind: str  # status, cut
    times: int | None
    status: int = 500
    retry_after: str | None = None
    code: str | None = None
    message: str = ""
    cut_after: int = 0


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    frames: list[Frame] | None = None  # a stream, sent chunked
    content_type: str = "application/json"


class ProviderStub(JsonStubServer):
    """The fake providers; see the module docstring."""

    thread_name = "llm-providers"

    def __init__(self, api_key: str = "sk-stub-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.answer: str | Callable[[ProviderRequest], str] = "The stub provider says hello to you."
        self.tool_calls: list[ToolCall] = []
        self.usage = Usage()
        self.models = ["stub-model"]
        self.embedding_dimensions = 8
        self.first_token_delay = 0.0
        self.chunk_delay = 0.0
        self.requests: list[ProviderRequest] = []
        self._faults: list[_Fault] = []

    @property
    def base_url(self) -> str:
        """The root: OpenAI's SDK wants base_url + "/v1", Anthropic's and Ollama's clients take it as it is."""
        return f"http://127.0.0.1:{self.port}"

    # --- scripting ------------------------------------------------------------------------------------------

    def rate_limit(self, retry_after: str | None = "1", times: int | None = None) -> None:
        """429 in the provider's shape, with Retry-After unless None."""
        self._faults.append(_Fault("status", times, 429, retry_after, "rate_limit_exceeded", "Rate limit reached."))

    def fail(self, status: int = 500, times: int | None = None) -> None:
        self._faults.append(_Fault("status", times, status, None, None, "The server had an error."))

    def context_overflow(self, times: int | None = None) -> None:
        self._faults.append(_Fault("overflow", times, 400, None, "context_length_exceeded"))

    def cut_after(self, content_frames: int, times: int | None = None) -> None:
        self._faults.append(_Fault("cut", times, cut_after=content_frames))

    def behave(self) -> None:
        self._faults.clear()
        self.first_token_delay = self.chunk_delay = 0.0

    def _next_fault(self) -> _Fault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
        return fault

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to be closed."""
        read = await self.read_request(reader)
        if read is None:
            return False
        method, target, headers, body = read
        request = ProviderRequest(method, target.split("?", 1)[0], headers, body)
        self.requests.append(request)
        request_id = f"req_stub{len(self.requests)}"
        reply, fault = self._reply(request, request_id)
        request.status = reply.status
        if reply.status == 200 and reply.frames is None and self.first_token_delay:
            await asyncio.sleep(self.first_token_delay)  # a whole answer is its first token
        id_header = "request-id" if request.wire == "anthropic" else "x-request-id"
        reply.headers.append((id_header, request_id))
        if reply.frames is not None:
            return await self._send_stream(writer, request, reply, fault)
        head_out = self._head(reply, [("content-length", str(len(reply.body)))])
        if fault is not None and fault.kind == "cut":
            request.cut = True
            writer.write(head_out + reply.body[: len(reply.body) // 2])
            await writer.drain()
            return False
        writer.write(head_out + reply.body)
        await writer.drain()
        request.head_at = time.monotonic()
        return headers.get("connection", "").lower() != "close"

    @staticmethod
    def _head(reply: _Reply, extra: list[tuple[str, str]]) -> bytes:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Error"  # 529, Anthropic's "overloaded", is in no standard
        lines = [f"HTTP/1.1 {reply.status} {phrase}", f"content-type: {reply.content_type}", *(
            f"{name}: {value}" for name, value in [*reply.headers, *extra])]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def _send_stream(self, writer: asyncio.StreamWriter, request: ProviderRequest, reply: _Reply,
                           fault: _Fault | None) -> bool:
        """Chunked, so a cut (no terminating chunk) is an error to any client, never a short but whole answer."""
        assert reply.frames is not None
        writer.write(self._head(reply, [("transfer-encoding", "chunked"), ("cache-control", "no-cache")]))
        await writer.drain()
        request.head_at = time.monotonic()
        cut_at = fault.cut_after if fault is not None else 0
        last_content = max((i for i, frame in enumerate(reply.frames) if frame.content), default=-1)
        for index, frame in enumerate(reply.frames):
            # A cut comes after n content frames, or after the last if there are fewer, never after the usage.
            if fault is not None and (index > last_content or frame.content and request.content_frames >= cut_at):
                request.cut = True
                return False
            if frame.content:
                delay = self.first_token_delay if request.content_frames == 0 else self.chunk_delay
                if delay:
                    await asyncio.sleep(delay)
                request.content_at.append(time.monotonic())
                request.streamed_text += frame.text
            writer.write(b"%x\r\n%s\r\n" % (len(frame.data), frame.data))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return request.headers.get("connection", "").lower() != "close"

    # --- answers --------------------------------------------------------------------------------------------

    def _reply(self, request: ProviderRequest, request_id: str) -> tuple[_Reply, _Fault | None]:
        """The reply, and the scripted cut it is to suffer (None otherwise)."""
        headers = request.headers
        for (method, ending), (wire, endpoint) in ENDPOINTS.items():
            if request.method == method and request.path.endswith(ending):
                if endpoint == "models" and wire == "openai" and "anthropic-version" in headers:
                    wire = "anthropic"
                request.wire, request.endpoint = wire, endpoint
                break
        else:
            return _Reply(404, json.dumps({"error": f"no such path {request.method} {request.path}"}).encode()), None
        wire = request.wire
        if wire == "openai" and _bearer(headers) != self.api_key:
            text = "Incorrect API key provided." if _bearer(headers) else "You didn't provide an API key."
            return _Reply(401, error_body(wire, 401, text, "invalid_api_key")), None
        if wire == "anthropic" and self.api_key not in (headers.get("x-api-key"), _bearer(headers)):
            return _Reply(401, error_body(wire, 401, "invalid x-api-key", request_id=request_id)), None
        if wire == "anthropic" and "anthropic-version" not in headers:
            return _Reply(400, error_body(wire, 400, "anthropic-version: header is required", None, request_id)), None
        if request.endpoint == "models":
            listing = {"openai": openai_models, "anthropic": anthropic_models, "ollama": ollama_tags}[wire]
            return _Reply(200, listing(self.models)), None
        problem = self._invalid(request)
        if problem:
            return _Reply(400, error_body(wire, 400, problem, None, request_id)), None
        fault = self._next_fault()
        if fault is not None and fault.kind != "cut":
            message = OVERFLOW[wire] if fault.kind == "overflow" else fault.message
            extra = [("retry-after", fault.retry_after)] if fault.retry_after is not None else []
            return _Reply(fault.status, error_body(wire, fault.status, message, fault.code, request_id), extra), None
        body = request.body
        if request.endpoint == "embeddings":
            return _Reply(200, self._embeddings(request)), fault
        text = self.answer(request) if callable(self.answer) else self.answer
        answer = Answer(body["model"], text, tuple(self.tool_calls), self.usage)
        if not request.stream:
            whole = {"openai": lambda: openai_completion(answer, request_id),
                     "anthropic": lambda: anthropic_message(answer, request_id), "ollama": lambda: ollama_chat(answer)}
            return _Reply(200, whole[wire]()), fault
        if wire == "openai":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = openai_frames(answer, request_id, include_usage)
        else:
            frames = anthropic_frames(answer, request_id) if wire == "anthropic" else ollama_frames(answer)
        return _Reply(200, frames=frames, content_type=STREAM_TYPES[wire]), fault

    def _embeddings(self, request: ProviderRequest) -> bytes:
        body = request.body
        inputs = body["input"]
        texts = [inputs] if isinstance(inputs, str) else [str(item) for item in inputs]
        if request.wire == "ollama":
            return ollama_embed(body["model"], texts, self.embedding_dimensions, self.usage)
        dimensions = body.get("dimensions") or self.embedding_dimensions
        return openai_embeddings(body["model"], texts, dimensions, body.get("encoding_format") or "float",
                                 self.usage)

    @staticmethod
    def _invalid(request: ProviderRequest) -> str:
        """Why the real provider would refuse this request with a 400 ("" if it would not)."""
        body, wire = request.body, request.wire
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: field required"
        if request.endpoint == "embeddings":
            inputs = body.get("input")
            if not inputs or not isinstance(inputs, str | list):
                return "input: field required"
            return ""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: field required"
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES[wire]:
                return f"messages.{index}.role: unexpected role {role!r}"
        if wire == "openai" and body.get("stream_options") is not None and not body.get("stream"):
            return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        if wire == "anthropic" and (not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1):
            return "max_tokens: field required"
        return ""
