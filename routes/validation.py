"""The one validation of a route document, used alike by the admin, the API and the import.

A route document is the JSON shape of the earlier gateway's router object plus `id`, `name`, `enabled`,
`priority` and Rusta's own fields, as routes.schema declares them. `normalize_route` turns what a user sent
(including the legacy `host`/`port` form) into the canonical document; `validate_route` returns field-level errors,
empty when it may be saved: each field by its declared check (routes.field_checks, the blocks' compilers), each
block's unknown keys by path (routes.block_keys), a block on a route whose listener never reads it, and a clash
with another route.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from protocols.patterns import PatternError, canonical_pattern, parse_pattern
from routes.block_keys import BLOCKS, refuse_unknown, unknown_paths, without_unknown
from routes.field_checks import DEFAULT_PORTS, KIND_CHECKS, split_backend_host
from routes.schema import BLOCK_NAMES, BLOCKS_BY_NAME, FIELD_NAMES, FIELDS
from routes.schema import defaults as field_defaults

# A dns route is answered by the DNS listener and by DNS over HTTPS on its own paths, never at a path of its own;
# left out, its path and methods are DoH's, which the proxy answers before route matching.
DNS_DEFAULTS: dict[str, Any] = {"external_path": "/dns-query", "methods": ["GET", "POST"]}
# An llm route's front doors take POST (chat) and GET (model lists); its models are its llm.targets.
LLM_DEFAULTS: dict[str, Any] = {"methods": ["GET", "POST"], "backends": []}
# Every gRPC call is an HTTP/2 POST (the path names the service and method).
GRPC_DEFAULTS: dict[str, Any] = {"methods": ["POST"]}
PROTOCOL_DEFAULTS = {"dns": DNS_DEFAULTS, "llm": LLM_DEFAULTS, "grpc": GRPC_DEFAULTS}
LEGACY_FIELDS = ("host", "port", "_comment")
BACKEND_FIELDS = ("host", "port", "weight", "health_check_path", "enabled", "description", "discovery", "tls")
BACKEND_READ_ONLY = ("id",)  # shown by the API; a document sent back with it is not refused, and it is ignored
_DEFAULTS = field_defaults()
Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def normalize_route(data: dict[str, Any]) -> dict[str, Any]:
    """The canonical document for what the user sent; unknown keys are dropped (see `unknown_keys`)."""
    doc = {key: data[key] for key in FIELD_NAMES if key in data}
    if "backends" not in doc and "host" in data:
        # The earlier gateway's single-backend form: {"host": "http://x", "port": 3000}.
        doc["backends"] = [{"host": data["host"], "port": data.get("port"), "weight": 1}]
    doc.setdefault("protocol", _DEFAULTS["protocol"])
    defaults = PROTOCOL_DEFAULTS.get(doc["protocol"], {}) if isinstance(doc["protocol"], str) else {}
    for key, value in defaults.items():
        if doc.get(key) in (None, "", []):
            doc[key] = list(value) if isinstance(value, list) else value
    for key, value in _DEFAULTS.items():
        doc.setdefault(key, value)
    if isinstance(doc.get("methods"), list):
        methods: list[Any] = []
        for method in doc["methods"]:
            method = method.upper() if isinstance(method, str) else method
            if method not in methods:
                methods.append(method)
        doc["methods"] = methods
    for text_field in ("internal_path", "match_host"):
        if doc.get(text_field) is None:
            doc[text_field] = ""
    if isinstance(doc.get("backends"), list):
        doc["backends"] = [
            _normalize_backend(b, doc["protocol"]) if isinstance(b, dict) else b for b in doc["backends"]
        ]
    return doc


def _normalize_backend(backend: dict[str, Any], protocol: Any) -> dict[str, Any]:
    out = {key: backend[key] for key in BACKEND_FIELDS if key in backend}
    out.setdefault("weight", 1)
    out.setdefault("health_check_path", None)
    out.setdefault("enabled", True)
    if out.get("description") is None:
        out["description"] = ""
    if out.get("health_check_path") == "":
        out["health_check_path"] = None
    for optional in ("discovery", "tls"):
        if out.get(optional) is None:
            out.pop(optional, None)  # a backend without it: its document has no such key
    if out.get("port") is None and isinstance(out.get("host"), str):
        scheme, _ = split_backend_host(out["host"].strip(), protocol if isinstance(protocol, str) else "http")
        if scheme in DEFAULT_PORTS:
            out["port"] = DEFAULT_PORTS[scheme]
    return out


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def block_unknown_keys(block: str, value: Any, prefix: str) -> list[str]:
    """Paths of the keys one policy or settings block does not know (routes.block_keys declares them)."""
    return list(unknown_paths(block, value, prefix))


def without_unknown_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """A canonical document without the unknown keys an import without --strict leaves out (it lists them): those
    of every block but the ones that decide who gets in and how much (`BlockKeys.import_drops`), which stay for
    validation to refuse."""
    out = dict(doc)
    for block in BLOCK_NAMES:
        if BLOCKS[block].import_drops:
            out[block] = without_unknown(block, out.get(block))
    return out


def unknown_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths of keys Rusta does not know in one router object (e.g. `routers[2].ai_policy.foo`)."""
    found = [_join(prefix, key) for key in data
             if key not in FIELD_NAMES and key not in LEGACY_FIELDS and not str(key).startswith("_")]
    backends = data.get("backends")
    for index, backend in enumerate(backends if isinstance(backends, list) else []):
        if isinstance(backend, dict):
            found += [_join(prefix, f"backends[{index}].{key}") for key in backend
                      if key not in BACKEND_FIELDS and key not in BACKEND_READ_ONLY
                      and not str(key).startswith("_")]
    for block in BLOCK_NAMES:
        found += block_unknown_keys(block, data.get(block), _join(prefix, block))
    return found


def validate_route(doc: dict[str, Any], others: Iterable[dict[str, Any]] = ()) -> Errors:
    """Field-level errors of a canonical route document; `others` are the enabled routes it must not clash with."""
    errors: Errors = {}
    # Every block refuses a key it does not know, by path and in the same words; its own check then judges the
    # keys it has.
    doc = {**doc, **{block: refuse_unknown(block, doc.get(block), errors) for block in BLOCK_NAMES}}
    for field in FIELDS:
        check = field.check or KIND_CHECKS[field.kind]
        check(field, doc.get(field.name), doc, errors)
    protocol = doc.get("protocol")
    for block in BLOCKS_BY_NAME.values():
        # A block only some listeners read would be stored and silently do nothing on the others' routes.
        if block.protocols and doc.get(block.name) is not None and isinstance(protocol, str) \
                and protocol not in block.protocols:
            _add(errors, block.name, f"Only {' and '.join(block.protocols)} routes use the {block.name} block and "
                                     f"this route's protocol is {protocol}: remove the block (null).")
    if protocol == "llm":
        _check_llm_blocks(doc, errors)
    if protocol == "grpc":
        _check_grpc(doc, errors)
    if doc.get("enabled") and not errors.get("methods") and not errors.get("external_path"):
        _validate_unique(doc, canonical_pattern(parse_pattern(doc["external_path"])), others, errors)
    return errors


# Blocks every protocol's listener reads but the LLM front doors: an llm route has no backends to probe and its
# answers are translated, cached and sized by its own llm block; of `retry`, only the fallback budget applies.
LLM_UNUSED_BLOCKS = ("health_check", "request_transformation", "response_transformation", "cache", "compression")
LLM_RETRY_KEYS = frozenset({"budget_ratio", "budget_window_s", "budget_min_per_s"})


def _check_llm_blocks(doc: dict[str, Any], errors: Errors) -> None:
    for block in LLM_UNUSED_BLOCKS:
        if doc.get(block) is not None:
            _add(errors, block, f"An llm route does not use {block} (its llm block has its own cache and "
                                "limits): remove it (null).")
    retry = doc.get("retry")
    if isinstance(retry, dict):
        for key in retry:
            if key not in LLM_RETRY_KEYS and not str(key).startswith("_"):
                _add(errors, f"retry.{key}", "On an llm route only the fallback budget applies (budget_ratio, "
                                             "budget_window_s, budget_min_per_s): a failing target is not asked "
                                             "again, the next one is.")


# The blocks a gRPC call goes through; the others rewrite or describe HTTP bodies and headers that a gRPC
# client reads as framed protobuf and trailers (transformations, cache, compression, cors, security_headers), or
# belong to another listener.
GRPC_BLOCKS = ("retry", "circuit_breaker", "health_check", "rate_limit", "jwt", "tls", "ip_rules", "limits")


def _check_grpc(doc: dict[str, Any], errors: Errors) -> None:
    for block in BLOCKS_BY_NAME.values():
        if block.name in GRPC_BLOCKS or doc.get(block.name) is None:
            continue
        if block.protocols and "grpc" not in block.protocols:
            continue  # refused above, in the words every protocol's routes get
        _add(errors, block.name, f"A grpc route does not use {block.name}; it takes {', '.join(GRPC_BLOCKS)}: "
                                 "remove it (null).")
    methods = doc.get("methods")
    if isinstance(methods, list) and methods and methods != GRPC_DEFAULTS["methods"]:
        _add(errors, "methods", 'Every gRPC call is a POST: leave methods out or send ["POST"].')


def _validate_unique(doc: dict[str, Any], pattern: str, others: Iterable[dict[str, Any]], errors: Errors) -> None:
    mine = set(doc["methods"])
    if "GET" in mine:
        mine.add("HEAD")
    host = (doc.get("match_host") or "").lower()
    for other in others:
        if other.get("id") is not None and other.get("id") == doc.get("id"):
            continue
        if doc.get("protocol") == other.get("protocol") == "dns":
            continue  # neither serves its path: every dns route only adds resolvers
        if not other.get("enabled") or (other.get("match_host") or "").lower() != host:
            continue
        try:
            other_pattern = canonical_pattern(parse_pattern(other.get("external_path")))  # type: ignore[arg-type]
        except PatternError:
            continue
        theirs = set(other.get("methods") or [])
        if "GET" in theirs:
            theirs.add("HEAD")
        overlap = mine & theirs
        if other_pattern == pattern and overlap:
            _add(errors, "external_path",
                 f"Route '{other.get('name')}' already serves {', '.join(sorted(overlap))} {other.get('external_path')}"
                 + (f" on host {host}" if host else "") + ".")
