"""Token usage as each provider reports it, read exactly into the neutral Usage and written back out."""
from __future__ import annotations

from typing import Any

from protocols.llm.formats.chat import Json, Usage, as_int


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def from_openai(usage: Any) -> Usage | None:
    """OpenAI's `usage`: prompt_tokens (cached included), completion_tokens, prompt_tokens_details.cached_tokens.
    None when the answer carries no usage object."""
    if not isinstance(usage, dict):
        return None
    details = _object(usage.get("prompt_tokens_details"))
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        cached_input_tokens=as_int(details.get("cached_tokens")),
    )


def from_anthropic(usage: Any, into: Usage | None = None) -> Usage | None:
    """Anthropic's `usage`: input_tokens excludes cache reads and writes, so the three are added up.

    `into` is the usage seen so far in a stream: a message_delta's figures are running totals that overwrite,
    and one it leaves out keeps message_start's value (how Anthropic's own SDK reads them).
    """
    if not isinstance(usage, dict):
        return into
    base = into or Usage()
    uncached = as_int(usage["input_tokens"]) if "input_tokens" in usage and usage["input_tokens"] is not None \
        else base.uncached_input_tokens
    reads = as_int(usage["cache_read_input_tokens"]) if usage.get("cache_read_input_tokens") is not None \
        else base.cached_input_tokens
    writes = as_int(usage["cache_creation_input_tokens"]) if usage.get("cache_creation_input_tokens") is not None \
        else base.cache_write_tokens
    output = as_int(usage["output_tokens"]) if usage.get("output_tokens") is not None else base.output_tokens
    return Usage(input_tokens=uncached + reads + writes, output_tokens=output, cached_input_tokens=reads,
                 cache_write_tokens=writes)


def from_ollama(answer: Json) -> Usage | None:
    """Ollama's final object: prompt_eval_count and eval_count (no cache figures). None before `done`."""
    if "prompt_eval_count" not in answer and "eval_count" not in answer:
        return None
    return Usage(input_tokens=as_int(answer.get("prompt_eval_count")), output_tokens=as_int(answer.get("eval_count")))


def to_openai(usage: Usage) -> Json:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }


def to_anthropic(usage: Usage) -> Json:
    return {
        "input_tokens": usage.uncached_input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }
