"""The model lists of the front doors (OpenAI's and Anthropic's GET /v1/models), written from a route's targets."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from protocols.llm.formats.chat import FormatError, Json
from protocols.llm.formats.translate import ProviderKind

# (model id, provider kind) of each target, in the route's order. No provider is asked: the list says what the
# route serves, and a model listed by the provider but not configured could not be reached through it anyway.
ModelEntry = tuple[str, ProviderKind]

ANTHROPIC_DEFAULT_LIMIT = 20  # Anthropic's own page size when `limit` is not given
ANTHROPIC_MAX_LIMIT = 1000


def unique(models: Sequence[ModelEntry]) -> list[ModelEntry]:
    """Each model id once (two targets may serve one model, as a fallback), where it first appears."""
    seen: dict[str, ModelEntry] = {}
    for entry in models:
        seen.setdefault(entry[0], entry)
    return list(seen.values())


# --- OpenAI ---------------------------------------------------------------------------------------------------

def _openai_model(entry: ModelEntry, created: int) -> Json:
    # owned_by names the provider kind: what a client can tell of a model without learning any key or address.
    return {"id": entry[0], "object": "model", "created": created, "owned_by": entry[1]}


def render_openai_list(models: Sequence[ModelEntry], *, created: int = 0) -> Json:
    """OpenAI's list: {object: list, data: [{id, object: model, created, owned_by}]}. `created` (Unix seconds) is
    the same for every model: Rusta knows no release dates (the route's last change is a fair value)."""
    return {"object": "list", "data": [_openai_model(entry, created) for entry in unique(models)]}


def render_openai_model(models: Sequence[ModelEntry], model_id: str, *, created: int = 0) -> Json | None:
    """GET /v1/models/{model_id}; None when the route has no such model (answer 404 in the client's format)."""
    entry = _find(models, model_id)
    return None if entry is None else _openai_model(entry, created)


# --- Anthropic ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnthropicPage:
    """Which page of Anthropic's list the client asked for (its query string)."""

    limit: int = ANTHROPIC_DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None


def parse_anthropic_page(query: Mapping[str, str]) -> AnthropicPage:
    """`limit` (1-1000), `after_id` or `before_id` from the query; FormatError (400) names a wrong one. Other
    parameters are left to the caller (the SDKs add none to this request)."""
    limit = ANTHROPIC_DEFAULT_LIMIT
    if query.get("limit") is not None:
        raw = query["limit"]
        if not raw.isdigit() or not 1 <= int(raw) <= ANTHROPIC_MAX_LIMIT:
            raise FormatError("limit", f"must be an integer from 1 to {ANTHROPIC_MAX_LIMIT}")
        limit = int(raw)
    after_id, before_id = query.get("after_id") or None, query.get("before_id") or None
    if after_id is not None and before_id is not None:
        raise FormatError("before_id", "cannot be given with after_id")
    return AnthropicPage(limit, after_id, before_id)


def _anthropic_model(entry: ModelEntry, created: int) -> Json:
    created_at = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": entry[0], "display_name": entry[0], "created_at": created_at,
            "lifecycle": "active"}


def render_anthropic_list(models: Sequence[ModelEntry], page: AnthropicPage | None = None, *,
                          created: int = 0) -> Json:
    """Anthropic's list: {data: [{type: model, id, display_name, created_at}], has_more, first_id, last_id}, one
    page of it. `has_more` looks the way the client pages (before `before_id`, else after the page), which is how
    the SDK's auto-paging asks for the next one. FormatError (400) for a cursor that is not one of the models."""
    page = page or AnthropicPage()
    entries = unique(models)
    ids = [entry[0] for entry in entries]
    if page.before_id is not None:
        end = _position(ids, page.before_id, "before_id")
        start = max(0, end - page.limit)
        has_more = start > 0
    else:
        start = 0 if page.after_id is None else _position(ids, page.after_id, "after_id") + 1
        end = min(len(ids), start + page.limit)
        has_more = end < len(ids)
    data = [_anthropic_model(entry, created) for entry in entries[start:end]]
    return {"data": data, "has_more": has_more, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def render_anthropic_model(models: Sequence[ModelEntry], model_id: str, *, created: int = 0) -> Json | None:
    """GET /v1/models/{model_id}; None when the route has no such model (answer 404 in the client's format)."""
    entry = _find(models, model_id)
    return None if entry is None else _anthropic_model(entry, created)


def _position(ids: list[str], model_id: str, param: str) -> int:
    try:
        return ids.index(model_id)
    except ValueError:
        raise FormatError(param, f"{model_id!r} is not a model of this route") from None


def _find(models: Sequence[ModelEntry], model_id: str) -> ModelEntry | None:
    return next((entry for entry in models if entry[0] == model_id), None)
