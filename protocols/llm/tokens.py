"""Token counting for admission and for cut streams: exact for OpenAI's models, an estimate for the others.

The encoders come from bpe-openai, whose wheel ships the cl100k and o200k tables (nothing is downloaded at run
time). Its Rust tokenizer is called directly (`_bindings`, typed by the package's own .pyi): the package's
tiktoken-style `Encoding` builds a token list to be thrown away and refuses texts past 1M characters, while
counting must work on any prompt, in linear time.
"""
from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterable
from typing import Any, Protocol

from protocols.llm.formats.chat import ChatRequest, ImagePart, TextPart

# OpenAI's guide to counting chat tokens: each message costs 3 tokens of framing, a `name` one more, and every
# answer is primed with 3. Tools are rendered into the prompt in a private format: 7 tokens a tool and 12 at the
# end approximate OpenAI's own counts for gpt-4o (its cookbook's figures).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
TOKENS_PER_TOOL = 7
TOOLS_END = 12
TOKENS_PER_TOOL_CALL = 3
# An image is not decoded to count its tiles: every image counts as a 1024x1024 high-detail one (85 + 4 x 170).
TOKENS_PER_IMAGE = 765

_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-4o", "o1", "o3", "o4", "gpt-oss", "codex")
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-")


class _Tokenizer(Protocol):
    def count(self, text: str) -> int: ...


_tokenizers: dict[str, _Tokenizer] = {}
_lock = threading.Lock()


def _tokenizer(encoding: str) -> _Tokenizer:
    """The Rust tokenizer of `encoding`, loaded once per process (the first load costs about a second: call
    warm() at start-up so that no request pays it)."""
    found = _tokenizers.get(encoding)
    if found is None:
        with _lock:
            found = _tokenizers.get(encoding)
            if found is None:
                with warnings.catch_warnings():  # its data loader uses a deprecated importlib.resources call
                    warnings.simplefilter("ignore", DeprecationWarning)
                    from bpe_openai import _bindings  # 74 MB of native code: imported only by a process that counts
                found = _tokenizers[encoding] = _bindings.tokenizer_for_encoding(encoding)
    return found


def warm(models: Iterable[str] = ("gpt-4o",)) -> None:
    """Load the encoders of `models` now: a gateway process with LLM routes calls this with its routes' models
    before it takes requests (the import costs about a second and 70 MB, each encoder about 45 MB more)."""
    for encoding in {encoding_for(model)[0] for model in models}:
        _tokenizer(encoding)


def encoding_for(model: str) -> tuple[str, bool]:
    """(encoding, exact): OpenAI's model families by name prefix; any other model (Claude, Llama, Mistral...) is
    estimated with o200k, the newest table, which runs close to those models' own tokenizers on English text."""
    name = model.lower().rpartition("/")[2]  # "openai/gpt-4o" as some compatible servers name it
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base", True
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base", True
    return "o200k_base", False


class TokenCounter:
    """Counts text and whole chat prompts with one encoding. `exact` tells whether the figures are the provider's
    own (OpenAI's models) or an estimate."""

    __slots__ = ("encoding", "exact", "_tokenizer")

    def __init__(self, encoding: str, exact: bool) -> None:
        self.encoding, self.exact = encoding, exact
        self._tokenizer = _tokenizer(encoding)

    def count(self, text: str) -> int:
        return int(self._tokenizer.count(text)) if text else 0

    def count_request(self, request: ChatRequest) -> int:
        """The prompt's tokens as OpenAI counts them (messages, system prompts, tool calls and results, tool
        definitions); exact for plain text with OpenAI's models, within a few tokens with tools."""
        total = REPLY_PRIMING
        for message in request.messages:
            total += TOKENS_PER_MESSAGE + self.count(message.role)
            if isinstance(message.extra.get("name"), str):
                total += TOKENS_PER_NAME + self.count(message.extra["name"])
            for part in message.content:
                if isinstance(part, TextPart):
                    total += self.count(part.text)
                elif isinstance(part, ImagePart):
                    total += TOKENS_PER_IMAGE
                else:
                    total += self.count(_json(part.raw))
            for call in message.tool_calls:
                total += TOKENS_PER_TOOL_CALL + self.count(call.name) + self.count(call.arguments)
        if request.tools:
            total += TOOLS_END
            for tool in request.tools:
                total += TOKENS_PER_TOOL + self.count(tool.name) + self.count(tool.description or "")
                total += self.count(_json(tool.parameters))
        return total


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_counters: dict[tuple[str, bool], TokenCounter] = {}


def counter_for(model: str) -> TokenCounter:
    """The counter for `model` (one per encoding and exactness, however many model names clients send)."""
    key = encoding_for(model)
    counter = _counters.get(key)
    if counter is None:
        counter = _counters[key] = TokenCounter(*key)
    return counter
