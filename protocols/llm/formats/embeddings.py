"""OpenAI's /v1/embeddings front door: requests for OpenAI-style providers and Ollama's /api/embed, answers back."""
from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from protocols.llm.formats.chat import FormatError, Json, ProviderFormatError, Usage, as_int
from protocols.llm.formats.fields import check_extras, integer, opt_string, string
from protocols.llm.formats.translate import ProviderKind, wire_of

Endpoint = Literal["chat", "embeddings", "models"]
Encoding = Literal["float", "base64"]

# Where each provider kind takes embeddings; a kind missing here has none (Anthropic offers no embeddings API).
EMBEDDINGS_PATHS: dict[str, bytes] = {"openai": b"/v1/embeddings", "openai_compatible": b"/v1/embeddings",
                                      "ollama": b"/api/embed"}
_MODELLED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def can_serve(provider: ProviderKind, endpoint: Endpoint) -> bool:
    """Whether a target of this provider kind can answer the front door `endpoint`. Every kind chats; the model
    lists are written from the route's own targets, so every kind is listed; embeddings need an embeddings API."""
    return endpoint != "embeddings" or provider in EMBEDDINGS_PATHS


# --- Requests -----------------------------------------------------------------------------------------------

@dataclass
class EmbeddingsRequest:
    """One OpenAI embeddings request. Exactly one of `texts` and `tokens` holds the inputs (OpenAI also takes
    token arrays, which only an OpenAI-style provider can read). `body` is the client's body as sent, given on
    unchanged (but for the model) to OpenAI-style providers."""

    model: str
    texts: list[str]
    tokens: list[list[int]]
    encoding_format: Encoding
    dimensions: int | None
    user: str | None
    body: Json
    extra: Json = field(default_factory=dict)  # fields this module does not model

    def role_texts(self) -> list[tuple[str, str]]:
        """(role, text) of every text input, as "user": what the prompt guard reads."""
        return [("user", text) for text in self.texts]

    def prompt_tokens(self, count: Any) -> int:
        """The inputs' tokens (for admission before the provider has said): `count` over each text, or the
        length of each token array."""
        return sum(int(count(text)) for text in self.texts) + sum(len(tokens) for tokens in self.tokens)


def parse_request(body: Json) -> EmbeddingsRequest:
    """An OpenAI embeddings request body; FormatError (400) names the first field that is wrong."""
    model = string(body.get("model"), "model")
    texts, tokens = _parse_input(body.get("input"))
    encoding: Encoding = "float"
    if body.get("encoding_format") == "base64":
        encoding = "base64"
    elif body.get("encoding_format") not in (None, "float"):
        raise FormatError("encoding_format", "must be 'float' or 'base64'")
    return EmbeddingsRequest(
        model=model, texts=texts, tokens=tokens, encoding_format=encoding,
        dimensions=integer(body.get("dimensions"), "dimensions"), user=opt_string(body.get("user"), "user"),
        body=body, extra={key: value for key, value in body.items() if key not in _MODELLED})


def _parse_input(value: Any) -> tuple[list[str], list[list[int]]]:
    """A string, a list of strings, one token array or a list of token arrays (OpenAI's four forms)."""
    if isinstance(value, str):
        if not value:
            raise FormatError("input", "must not be an empty string")
        return [value], []
    if not isinstance(value, list) or not value:
        raise FormatError("input", "must be a string or a non-empty array of strings or of token arrays")
    if all(_is_token(item) for item in value):
        return [], [value]
    texts: list[str] = []
    tokens: list[list[int]] = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, list) and item and all(_is_token(token) for token in item):
            tokens.append(item)
        else:
            raise FormatError(f"input[{index}]", "must be a non-empty string or a non-empty array of token ids")
    if texts and tokens:
        raise FormatError("input", "must be all strings or all token arrays, not both")
    return texts, tokens


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def render_request(request: EmbeddingsRequest, provider: ProviderKind, model: str) -> Json:
    """The provider's body for `model` (POST it to EMBEDDINGS_PATHS[provider]). OpenAI-style providers get the
    client's body as it came; Ollama gets {model, input, dimensions} and `truncate: false`, so an input longer
    than the model's context is refused as OpenAI refuses it (and can fall back) instead of silently cut.
    FormatError (400) for what Ollama cannot take (token arrays, fields it has no place for) and for a provider
    without embeddings."""
    if not can_serve(provider, "embeddings"):
        raise FormatError("model", f"a model of the {provider} provider cannot make embeddings")
    if wire_of(provider) == "openai":
        return {**request.body, "model": model}
    if request.tokens:
        raise FormatError("input", "token arrays can be sent to OpenAI-style providers only: send the text")
    # `user` is an abuse-monitoring hint (nothing in the answer depends on it): dropped for Ollama.
    check_extras(request.extra, frozenset(), "", "openai", "ollama")
    body: Json = {"model": model, "input": request.texts, "truncate": False}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


# --- Answers ------------------------------------------------------------------------------------------------

@dataclass
class Vector:
    """One embedding as the provider sent it: floats, or OpenAI's base64 of little-endian float32s. Converted
    only when the client asked for the other encoding."""

    floats: list[float] | None = None
    b64: str | None = None

    def as_floats(self) -> list[float]:
        if self.floats is not None:
            return self.floats
        raw = base64.b64decode(self.b64 or "")
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))

    def as_base64(self) -> str:
        if self.b64 is not None:
            return self.b64
        floats = self.floats or []
        return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode("ascii")


@dataclass
class EmbeddingsResponse:
    """The vectors in input order, and the prompt's tokens (`usage.estimated` when the provider gave none)."""

    model: str
    vectors: list[Vector]
    usage: Usage


def parse_response(provider: ProviderKind, answer: Any) -> EmbeddingsResponse:
    """A provider's embeddings answer; ProviderFormatError (502) when it is not one."""
    wire = wire_of(provider)
    try:
        if wire == "ollama":
            return _parse_ollama(answer)
        if wire == "openai":
            return _parse_openai(answer)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, struct.error, binascii.Error) as exc:
        raise ProviderFormatError(wire, f"not an embeddings answer ({exc!r})") from exc
    raise ProviderFormatError(wire, "no embeddings API")


def _parse_openai(answer: Json) -> EmbeddingsResponse:
    vectors: list[Vector] = []
    for item in sorted(answer["data"], key=lambda item: int(item["index"])):
        value = item["embedding"]
        if isinstance(value, str):
            if len(base64.b64decode(value, validate=True)) % 4:
                raise ValueError("a base64 embedding's length is not a whole number of float32s")
            vectors.append(Vector(b64=value))
        else:
            vectors.append(Vector(floats=_floats(value)))
    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return EmbeddingsResponse(str(answer.get("model", "")), vectors, _usage(tokens))


def _parse_ollama(answer: Json) -> EmbeddingsResponse:
    vectors = [Vector(floats=_floats(value)) for value in answer["embeddings"]]
    return EmbeddingsResponse(str(answer.get("model", "")), vectors, _usage(answer.get("prompt_eval_count")))


def _floats(value: Any) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ValueError("an embedding is not an array of numbers")
    return [float(x) for x in value]


def _usage(prompt_tokens: Any) -> Usage:
    if prompt_tokens is None:
        return Usage(estimated=True)
    return Usage(input_tokens=as_int(prompt_tokens))


def fill_usage(response: EmbeddingsResponse, prompt_tokens: int) -> Usage:
    """The answer's usage, Rusta's own count (`request.prompt_tokens(count)`) when the provider reported none, so
    no embeddings request costs zero."""
    if response.usage.estimated:
        response.usage = Usage(input_tokens=prompt_tokens, estimated=True)
    return response.usage


def render_response(response: EmbeddingsResponse, encoding: Encoding, model: str | None = None) -> Json:
    """OpenAI's answer in the encoding the client asked for (`request.encoding_format`), whatever the provider
    sent; `model` is the name the client sees (the provider's when None)."""
    data = [{"object": "embedding", "index": index,
             "embedding": vector.as_base64() if encoding == "base64" else vector.as_floats()}
            for index, vector in enumerate(response.vectors)]
    tokens = response.usage.input_tokens
    return {"object": "list", "data": data, "model": model or response.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
