"""Provider streams read into neutral events: OpenAI chunks, Anthropic's typed events, Ollama's NDJSON lines."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from protocols.llm.formats import anthropic_wire, ollama_wire, openai_wire
from protocols.llm.formats import usage as usage_wire
from protocols.llm.formats.chat import FinishReason, Json, ProviderFormatError, Usage, WireFormat
from protocols.llm.formats.framing import Frame


@dataclass(frozen=True)
class Start:
    """The answer's identity, once known; Anthropic's also carries the prompt's usage."""

    id: str | None
    model: str | None
    usage: Usage | None = None


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolStart:
    index: int  # 0, 1, ... in the order the answer's tool calls begin
    id: str
    name: str


@dataclass(frozen=True)
class ToolArgs:
    index: int
    fragment: str  # a piece of the arguments' JSON text


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    stop_sequence: str | None = None


@dataclass(frozen=True)
class UsageSeen:
    usage: Usage  # the provider's figures so far (running totals: the last one wins)


@dataclass(frozen=True)
class StreamError:
    type: str
    message: str


@dataclass(frozen=True)
class Done:
    """The provider's own end marker: [DONE], message_stop, a line with done: true."""


Event = Start | Text | ToolStart | ToolArgs | Finish | UsageSeen | StreamError | Done


def _json(provider: str, data: str) -> Json:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ProviderFormatError(provider, f"a stream event is not JSON ({data[:80]!r})") from exc
    if not isinstance(value, dict):
        raise ProviderFormatError(provider, "a stream event is not a JSON object")
    return value


class OpenAIStreamReader:
    """chat.completion.chunk events. Only the first choice is read (n > 1 is never translated)."""

    framing = "sse"

    def __init__(self) -> None:
        self._started = False

    def read(self, frame: Frame) -> list[Event]:
        _, data = frame
        if data.strip() == "[DONE]":
            return [Done()]
        chunk = _json("openai", data)
        events: list[Event] = []
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            return [StreamError(str(error.get("type") or "api_error"), str(error.get("message") or ""))]
        if not self._started:
            self._started = True
            events.append(Start(chunk.get("id"), chunk.get("model")))
        try:
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    events.append(Text(delta["content"]))
                for call in delta.get("tool_calls") or []:
                    function = call.get("function") or {}
                    if call.get("id"):
                        events.append(ToolStart(call.get("index", 0), call["id"], function.get("name") or ""))
                    if function.get("arguments"):
                        events.append(ToolArgs(call.get("index", 0), function["arguments"]))
                if choice.get("finish_reason"):
                    events.append(Finish(openai_wire.finish_reason(choice["finish_reason"])))
            usage = usage_wire.from_openai(chunk.get("usage"))
        except (AttributeError, TypeError, ValueError) as exc:
            raise ProviderFormatError("openai", f"a stream chunk is malformed ({exc!r})") from exc
        if usage is not None:
            events.append(UsageSeen(usage))
        return events


class AnthropicStreamReader:
    """message_start, content_block_*, message_delta, message_stop, ping and error events."""

    framing = "sse"

    def __init__(self) -> None:
        self._usage: Usage | None = None
        self._tools: dict[int, int] = {}  # Anthropic's block index -> tool call index

    def read(self, frame: Frame) -> list[Event]:
        event = _json("anthropic", frame[1])
        try:
            return self._read(event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderFormatError("anthropic", f"a {event.get('type')} event is malformed ({exc!r})") from exc

    def _read(self, event: Json) -> list[Event]:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                return [Text(delta["text"])] if delta["text"] else []
            if delta.get("type") == "input_json_delta" and event["index"] in self._tools:
                return [ToolArgs(self._tools[event["index"]], delta["partial_json"])] if delta["partial_json"] else []
            return []  # thinking, signatures and citations have no place in another format
        if kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "text":
                return [Text(block["text"])] if block.get("text") else []
            if block.get("type") == "tool_use":
                self._tools[event["index"]] = len(self._tools)
                return [ToolStart(self._tools[event["index"]], block["id"], block["name"])]
            return []
        if kind == "message_start":
            message = event["message"]
            self._usage = usage_wire.from_anthropic(message.get("usage"))
            return [Start(message.get("id"), message.get("model"), self._usage)]
        if kind == "message_delta":
            events: list[Event] = []
            delta = event.get("delta") or {}
            if delta.get("stop_reason"):
                events.append(Finish(anthropic_wire.stop_reason(delta["stop_reason"], bool(self._tools)),
                                     delta.get("stop_sequence")))
            if isinstance(event.get("usage"), dict):
                self._usage = usage_wire.from_anthropic(event["usage"], self._usage)
                if self._usage is not None:
                    events.append(UsageSeen(self._usage))
            return events
        if kind == "message_stop":
            return [Done()]
        if kind == "error":
            error = event.get("error") or {}
            return [StreamError(str(error.get("type") or "api_error"), str(error.get("message") or ""))]
        return []  # ping, content_block_stop, and event types added later


class OllamaStreamReader:
    """/api/chat NDJSON lines; tool calls arrive whole, usage on the line with done: true."""

    framing = "ndjson"

    def __init__(self) -> None:
        self._started = False
        self._tools = 0

    def read(self, frame: Frame) -> list[Event]:
        line = _json("ollama", frame[1])
        if "error" in line:
            return [StreamError("api_error", str(line["error"]))]
        events: list[Event] = []
        if not self._started:
            self._started = True
            events.append(Start(None, line.get("model")))
        try:
            message: Any = line.get("message") or {}
            if message.get("content"):
                events.append(Text(message["content"]))
            for call in ollama_wire.tool_calls(message):
                events += [ToolStart(self._tools, call.id, call.name), ToolArgs(self._tools, call.arguments)]
                self._tools += 1
            if line.get("done") is True:
                events.append(Finish(ollama_wire.done_reason(line, bool(self._tools))))
                usage = usage_wire.from_ollama(line)
                if usage is not None:
                    events.append(UsageSeen(usage))
                events.append(Done())
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderFormatError("ollama", f"a stream line is malformed ({exc!r})") from exc
        return events


Reader = OpenAIStreamReader | AnthropicStreamReader | OllamaStreamReader


def reader_for(provider: WireFormat) -> Reader:
    if provider == "anthropic":
        return AnthropicStreamReader()
    if provider == "ollama":
        return OllamaStreamReader()
    return OpenAIStreamReader()
