"""The neutral chat exchange every wire format is parsed into and rendered from: request, response, usage, errors."""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from protocols.errors import GatewayError

Json = dict[str, Any]
WireFormat = Literal["openai", "anthropic", "ollama"]
Role = Literal["system", "user", "assistant", "tool"]
# The four ways an answer ends, named as OpenAI names them; each wire module maps its own names to these.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]

# Anthropic refuses a request without max_tokens and OpenAI's requests may omit it: a request translated to
# Anthropic without one asks for this many (the largest answer every current Claude model can give).
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096


class FormatError(GatewayError):
    """400: a request the gateway cannot translate faithfully, naming the field (`param`) at fault.

    Raised instead of silently dropping something that changes what the model is asked (n > 1, logprobs, a
    temperature the target refuses, a content part the target cannot read...).
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(400, "invalid_request_error", f"{param}: {message}" if param else message)
        self.param = param
        self.detail = message


class ProviderFormatError(GatewayError):
    """502: a provider's answer that does not follow its own documented format."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(502, "bad_gateway", f"The {provider} provider sent an answer Rusta cannot read: {message}.")


# --- Request ------------------------------------------------------------------------------------------------

@dataclass
class TextPart:
    text: str
    extra: Json = field(default_factory=dict)  # same-format only: cache_control, citations...


@dataclass
class ImagePart:
    """An image given by URL, or inline as base64 `data` with its `media_type` (a data: URL in OpenAI's format)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    extra: Json = field(default_factory=dict)  # OpenAI's `detail`, Anthropic's cache_control


@dataclass
class OpaquePart:
    """A content part only its own format can carry (audio, files, documents, thinking blocks): passed through to
    the same format, refused across formats."""

    format: WireFormat
    raw: Json

    @property
    def kind(self) -> str:
        return str(self.raw.get("type", "?"))


Part = TextPart | ImagePart | OpaquePart


@dataclass
class ToolCall:
    """A call the assistant made: `arguments` is the JSON text of the arguments object, as OpenAI carries it."""

    id: str
    name: str
    arguments: str

    def arguments_object(self) -> Json:
        """The arguments as an object (Anthropic's and Ollama's form); text that is not an object becomes {}."""
        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


@dataclass
class Message:
    role: Role
    content: list[Part] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)  # assistant messages
    tool_call_id: str | None = None  # tool messages: the call this result answers
    is_error: bool = False  # tool messages: Anthropic's is_error (only Anthropic carries it)
    extra: Json = field(default_factory=dict)  # same-format only: OpenAI's `name`, a developer role...

    def text(self) -> str:
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


@dataclass
class Tool:
    name: str
    description: str | None = None
    parameters: Json = field(default_factory=lambda: {"type": "object", "properties": {}})


# What the client asked of tools: "auto", "none", "required" (use at least one) or the name of one tool.
ToolChoice = Literal["auto", "none", "required"] | str


@dataclass
class ChatRequest:
    """One chat request, whatever format it came in. `source` is that format; `extra` holds the top-level fields
    this module does not model, which are sent on only to the same format (see each wire module's lists)."""

    source: WireFormat
    model: str
    messages: list[Message]
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False  # the client asked for OpenAI's usage chunk (providers are always asked)
    user: str | None = None
    extra: Json = field(default_factory=dict)
    droppable: frozenset[str] = frozenset()  # keys of `extra` another format may go without (set by the parser)

    def role_texts(self) -> list[tuple[str, str]]:
        """(role, text) of every message, system prompts included: what the prompt guard reads."""
        return [(message.role, message.text()) for message in self.messages]


# --- Response -----------------------------------------------------------------------------------------------

@dataclass
class Usage:
    """Tokens of one exchange. `input_tokens` counts the whole prompt as OpenAI does (cached and cache-written
    tokens included); Anthropic, which reports them apart, is added up on the way in and split on the way out.
    `estimated` is set when any figure was counted by Rusta rather than reported by the provider."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # read from the provider's prompt cache (OpenAI cached_tokens, Anthropic reads)
    cache_write_tokens: int = 0  # written to it (Anthropic cache_creation_input_tokens)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Anthropic's input_tokens: the prompt less what was read from or written to the cache."""
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)


@dataclass
class ChatResponse:
    id: str
    model: str
    text: str
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage
    created: int
    stop_sequence: str | None = None


def new_id(prefix: str) -> str:
    """A fresh id in the style of the format that needs one (`chatcmpl-`, `msg_`, `call_`)."""
    return prefix + secrets.token_hex(12)


def require(condition: bool, param: str, message: str) -> None:
    if not condition:
        raise FormatError(param, message)


def as_int(value: Any) -> int:
    """A count from a provider's usage object: a missing or null figure is 0, a non-integer is refused."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"token count {value!r} is not a number")
    return int(value)
