"""Stream translation between formats (OpenAI <-> Anthropic, Ollama -> either): bytes in any chunking, bytes out.

A StreamTranslator reads the provider's stream (stream_readers) into neutral events and writes them in the
client's format (stream_writers); for the same format it passes each event through as the provider framed it.
Either way it keeps what a ledger needs: the provider's usage, or, for a stream cut before its usage arrived,
what was streamed counted with the model's token counter and the prompt's own count.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from protocols.llm.formats.chat import ChatResponse, FinishReason, ToolCall, Usage, WireFormat, new_id
from protocols.llm.formats.framing import NDJSONDecoder, SSEDecoder, sse
from protocols.llm.formats.stream_readers import (
    Done,
    Event,
    Finish,
    Start,
    StreamError,
    Text,
    ToolArgs,
    ToolStart,
    UsageSeen,
    reader_for,
)
from protocols.llm.formats.stream_writers import AnthropicStreamWriter, OpenAIStreamWriter, Writer, error_event

Counter = Callable[[str], int]
CLIENT_FORMATS = ("openai", "anthropic")


class StreamTranslator:
    """One streamed answer, from a `provider` format to a `client` format.

    `model` is the name the client sees; `prompt_tokens` Rusta's count of the prompt (the input figure when the
    stream is cut before the provider's); `count` the token counter for the output streamed so far;
    `include_usage` whether an OpenAI client asked for the usage chunk. Feed the provider's bytes to feed(), call
    end() when the provider's stream ends; `complete` then tells whether it ended as the format says it must.
    """

    def __init__(self, provider: WireFormat, client: WireFormat, *, model: str, prompt_tokens: int, count: Counter,
                 include_usage: bool = False, clock: Callable[[], float] = time.time) -> None:
        if client not in CLIENT_FORMATS:
            raise ValueError(f"no front door speaks the {client} format")
        self.provider, self.client, self.model = provider, client, model
        self.passthrough = provider == client
        self._reader = reader_for(provider)
        self._decoder = SSEDecoder() if self._reader.framing == "sse" else NDJSONDecoder()
        self._prompt_tokens, self._count, self._include_usage, self._clock = prompt_tokens, count, include_usage, clock
        self._writer: Writer | None = None
        self.id: str | None = None
        self.reported: Usage | None = None  # the provider's latest figures (message_start's, then the final ones)
        self.final_usage = False
        self.finish: Finish | None = None
        self.error: StreamError | None = None
        self.done = False
        self._text: list[str] = []
        self._tools: dict[int, ToolCall] = {}

    # --- Reading --------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        return self._frames(self._decoder.feed(data))

    def end(self) -> bytes:
        """The provider's stream has ended: the client's closing events if it ended whole, else nothing (the
        caller then sends error_bytes() or simply closes)."""
        out = self._frames(self._decoder.end())
        if not self.done and self.error is None and self.finish is not None and self.final_usage:
            out += self._close()  # the usage came but the closing marker did not: nothing is missing
        return out

    @property
    def complete(self) -> bool:
        return self.done and self.error is None

    def _frames(self, frames: list[tuple[str | None, str]]) -> bytes:
        out = b""
        for name, data in frames:
            events = self._reader.read((name, data))
            written = b"".join(self._track(event) for event in events)
            if not self.passthrough:
                out += written
            elif not self._include_usage and self.client == "openai" and events and \
                    all(isinstance(event, UsageSeen) for event in events):
                continue  # the usage chunk Rusta asked for on its own account
            else:
                out += sse(data, name)
        return out

    def _track(self, event: Event) -> bytes:
        """Keep what the ledger needs, and write the event in the client's format (unless passing through)."""
        if self.done or self.error is not None:
            return b""
        if isinstance(event, Start):
            if event.usage is not None:
                self.reported = event.usage
            self.id = self.id or event.id
            return self._start()
        out = self._start()
        if isinstance(event, Text):
            self._text.append(event.text)
        elif isinstance(event, ToolStart):
            self._tools[event.index] = ToolCall(event.id, event.name, "")
        elif isinstance(event, ToolArgs) and event.index in self._tools:
            self._tools[event.index].arguments += event.fragment
        elif isinstance(event, Finish):
            self.finish = event
            return out
        elif isinstance(event, UsageSeen):
            self.reported, self.final_usage = event.usage, True
            return out
        elif isinstance(event, StreamError):
            self.error = event
        elif isinstance(event, Done):
            return out + self._close()
        return out if self._writer is None else out + self._writer.write(event)

    def _start(self) -> bytes:
        if self._writer is not None or self.passthrough:
            return b""
        if self.client == "anthropic":
            writer = AnthropicStreamWriter(_client_id(self.id, "msg_"), self.model)
            self._writer = writer
            return writer.start(self.reported or Usage(input_tokens=self._prompt_tokens, estimated=True))
        self._writer = OpenAIStreamWriter(_client_id(self.id, "chatcmpl-"), self.model, int(self._clock()),
                                          self._include_usage)
        return b""

    def _close(self) -> bytes:
        self.done = True
        if self._writer is None:
            return b""
        finish = self.finish or Finish("tool_calls" if self._tools else "stop")
        return self._writer.close(finish, self.usage)

    # --- What the ledger and the cache read -----------------------------------------------------------------

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def started_answer(self) -> bool:
        """Whether any text or tool call has come yet (what the time to the first token waits for)."""
        return bool(self._text or self._tools)

    @property
    def usage(self) -> Usage:
        """The provider's figures when the stream carried its final usage; otherwise the input as the provider
        gave it at the start (Anthropic) or as Rusta counted it, and the output counted over what was streamed
        (or the provider's running figure if larger). Never zero for a stream that streamed something."""
        reported = self.reported
        if reported is not None and self.final_usage and self.done:
            return reported
        streamed = self._count(self.text) + sum(self._count(call.name) + self._count(call.arguments)
                                                for call in self._tools.values())
        if reported is None:
            return Usage(input_tokens=self._prompt_tokens, output_tokens=streamed, estimated=True)
        return Usage(input_tokens=reported.input_tokens or self._prompt_tokens,
                     output_tokens=max(reported.output_tokens, streamed),
                     cached_input_tokens=reported.cached_input_tokens,
                     cache_write_tokens=reported.cache_write_tokens, estimated=True)

    def response(self) -> ChatResponse:
        """What was streamed, as one answer (for the response cache and the access log)."""
        reason: FinishReason = self.finish.reason if self.finish else ("tool_calls" if self._tools else "stop")
        return ChatResponse(id=self.id or new_id("chatcmpl-"), model=self.model, text=self.text,
                            tool_calls=[self._tools[index] for index in sorted(self._tools)], finish_reason=reason,
                            usage=self.usage, created=int(self._clock()),
                            stop_sequence=self.finish.stop_sequence if self.finish else None)

    def error_bytes(self, message: str, type: str = "api_error") -> bytes:
        """An error event in the client's format, to end a stream the provider cut or failed."""
        return error_event(self.client, message, type)


def _client_id(provider_id: str | None, prefix: str) -> str:
    if provider_id is None:
        return new_id(prefix)
    return provider_id if provider_id.startswith(prefix) else prefix + provider_id


def replay(response: ChatResponse, client: WireFormat, *, include_usage: bool = False,
           clock: Callable[[], float] = time.time) -> bytes:
    """A whole answer written as a stream in the client's format (a cached answer asked for as a stream)."""
    events: list[Event] = [Start(response.id, response.model, None)]
    if response.text:
        events.append(Text(response.text))
    for index, call in enumerate(response.tool_calls):
        events += [ToolStart(index, call.id, call.name), ToolArgs(index, call.arguments)]
    writer: Writer
    if client == "anthropic":
        writer = AnthropicStreamWriter(_client_id(response.id, "msg_"), response.model)
        out = writer.start(response.usage)
    else:
        writer = OpenAIStreamWriter(_client_id(response.id, "chatcmpl-"), response.model, int(clock()), include_usage)
        out = b""
    out += b"".join(writer.write(event) for event in events)
    return out + writer.close(Finish(response.finish_reason, response.stop_sequence), response.usage)


def render_stream_error(client: WireFormat, message: str, type: str = "api_error") -> bytes:
    return error_event(client, message, type)
