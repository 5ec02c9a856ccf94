"""The one validation of a route document, used alike by the admin, the API and the import.

A route document is the JSON shape of the earlier gateway's router object plus `id`, `name`, `enabled`,
`priority` and Rusta's own fields. `normalize_route` turns what a user sent (including the legacy `host`/`port`
form) into the canonical document; `validate_route` returns field-level errors, empty when it may be saved.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from protocols.patterns import MAX_PATH_LENGTH, PatternError, canonical_pattern, parse_pattern, parse_template
from routes import network_safety, transformations
from routes.access_blocks import ACCESS_FIELDS, validate_access
from routes.block_keys import BLOCKS, refuse_unknown, unknown_paths, without_unknown
from routes.guard_blocks import GUARD_FIELDS, validate_guards
from routes.resilience_blocks import RULES as RESILIENCE_RULES
from routes.resilience_blocks import validate_block

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
PROTOCOLS = ("http", "websocket", "dns", "ftp")
STRATEGIES = ("round_robin", "weighted", "least_connections", "random", "ip_hash", "latency_aware")
SCHEMES_BY_PROTOCOL = {
    "http": ("http", "https"),
    "websocket": ("ws", "wss", "http", "https"),
    "ftp": ("ftp", "ftps"),
    "dns": ("dns",),
}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ftps": 21, "dns": 53}
# A dns route is answered by the DNS listener and by DNS over HTTPS on its own paths, never at a path of its own;
# left out, its path and methods are DoH's, which the proxy answers before route matching.
DNS_DEFAULTS: dict[str, Any] = {"external_path": "/dns-query", "methods": ["GET", "POST"]}
POLICY_FIELDS = ("retry", "health_check", "circuit_breaker", "request_transformation", "response_transformation",
                 "rate_limit", "ai_policy", "cache", "compression", *GUARD_FIELDS, *ACCESS_FIELDS)
ROUTE_FIELDS = (
    "id", "name", "enabled", "priority", "protocol", "external_path", "internal_path", "match_host", "methods",
    "backends", "load_balancing_strategy", "auth_required", "connect_timeout_ms", "read_timeout_ms",
    "total_timeout_ms", "preserve_host", *POLICY_FIELDS,
)
LEGACY_FIELDS = ("host", "port", "_comment")
BACKEND_FIELDS = ("host", "port", "weight", "health_check_path", "enabled")
BACKEND_READ_ONLY = ("id",)  # shown by the API; a document sent back with it is not refused, and it is ignored
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)({_LABEL})(\.{_LABEL})*\.?$")
MATCH_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,99}$")
Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def split_backend_host(host: str, protocol: str) -> tuple[str, str]:
    """`http://example.com` -> ("http", "example.com"); a bare host takes the protocol's first scheme."""
    if "://" in host:
        scheme, _, rest = host.partition("://")
        return scheme.lower(), rest.rstrip("/")
    return SCHEMES_BY_PROTOCOL.get(protocol, ("http",))[0], host.rstrip("/")


def normalize_route(data: dict[str, Any]) -> dict[str, Any]:
    """The canonical document for what the user sent; unknown keys are dropped (see `unknown_keys`)."""
    doc = {key: data[key] for key in ROUTE_FIELDS if key in data}
    if "backends" not in doc and "host" in data:
        # The earlier gateway's single-backend form: {"host": "http://x", "port": 3000}.
        doc["backends"] = [{"host": data["host"], "port": data.get("port"), "weight": 1}]
    doc.setdefault("protocol", "http")
    if doc["protocol"] == "dns":
        for key, value in DNS_DEFAULTS.items():
            if doc.get(key) in (None, "", []):
                doc[key] = list(value) if isinstance(value, list) else value
    doc.setdefault("enabled", True)
    doc.setdefault("priority", 0)
    doc.setdefault("internal_path", "")
    doc.setdefault("match_host", "")
    doc.setdefault("load_balancing_strategy", "round_robin")
    doc.setdefault("auth_required", False)
    doc.setdefault("connect_timeout_ms", 5000)
    doc.setdefault("read_timeout_ms", 30000)
    doc.setdefault("total_timeout_ms", 0)
    doc.setdefault("preserve_host", False)
    for field in POLICY_FIELDS:
        doc.setdefault(field, None)
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
    if out.get("health_check_path") == "":
        out["health_check_path"] = None
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
    for block in POLICY_FIELDS:
        if BLOCKS[block].import_drops:
            out[block] = without_unknown(block, out.get(block))
    return out


def unknown_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Paths of keys Rusta does not know in one router object (e.g. `routers[2].ai_policy.foo`)."""
    found = [_join(prefix, key) for key in data
             if key not in ROUTE_FIELDS and key not in LEGACY_FIELDS and not str(key).startswith("_")]
    backends = data.get("backends")
    for index, backend in enumerate(backends if isinstance(backends, list) else []):
        if isinstance(backend, dict):
            found += [_join(prefix, f"backends[{index}].{key}") for key in backend
                      if key not in BACKEND_FIELDS and key not in BACKEND_READ_ONLY
                      and not str(key).startswith("_")]
    for block in POLICY_FIELDS:
        found += block_unknown_keys(block, data.get(block), _join(prefix, block))
    return found


def validate_route(doc: dict[str, Any], others: Iterable[dict[str, Any]] = ()) -> Errors:
    """Field-level errors of a canonical route document; `others` are the enabled routes it must not clash with."""
    errors: Errors = {}
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        _add(errors, "name", "Use 1 to 100 letters, digits, spaces or '_.:-', starting with a letter or digit.")
    protocol = doc.get("protocol")
    if protocol not in PROTOCOLS:
        _add(errors, "protocol", f"Must be one of: {', '.join(PROTOCOLS)}.")
    segments = None
    try:
        segments = parse_pattern(doc.get("external_path"))  # type: ignore[arg-type]
    except PatternError as exc:
        _add(errors, "external_path", str(exc))
    internal = doc.get("internal_path")
    if not isinstance(internal, str):
        _add(errors, "internal_path", "Must be a string (empty forwards the request path unchanged).")
    elif len(internal) > MAX_PATH_LENGTH:
        _add(errors, "internal_path", f"Must be at most {MAX_PATH_LENGTH} characters.")
    elif segments is not None:
        try:
            parse_template(internal, frozenset(s.text for s in segments if s.is_param))
        except PatternError as exc:
            _add(errors, "internal_path", str(exc))
    _validate_methods(doc.get("methods"), errors)
    match_host = doc.get("match_host")
    if not isinstance(match_host, str) or (match_host and not MATCH_HOST.match(match_host)):
        _add(errors, "match_host", "Must be empty, a host name, or a wildcard like *.example.com (no port).")
    if doc.get("load_balancing_strategy") not in STRATEGIES:
        _add(errors, "load_balancing_strategy", f"Must be one of: {', '.join(STRATEGIES)}.")
    for field in ("auth_required", "enabled", "preserve_host"):
        if not isinstance(doc.get(field), bool):
            _add(errors, field, "Must be true or false.")
    _validate_int(doc, "priority", -1_000_000, 1_000_000, errors)
    _validate_int(doc, "connect_timeout_ms", 1, 600_000, errors)
    _validate_int(doc, "read_timeout_ms", 1, 3_600_000, errors)
    _validate_int(doc, "total_timeout_ms", 0, 3_600_000, errors)
    # Every block refuses a key it does not know, by path and in the same words; its own checks then judge the
    # keys it has.
    doc = {**doc, **{block: refuse_unknown(block, doc.get(block), errors) for block in POLICY_FIELDS}}
    if protocol in PROTOCOLS:
        _validate_backends(doc.get("backends"), protocol, errors)
    for block in RESILIENCE_RULES:
        validate_block(block, doc.get(block), errors)
    transformations.validate_request_transformation(doc.get("request_transformation"), errors)
    transformations.validate_response_transformation(doc.get("response_transformation"), errors)
    transformations.validate_cache(doc.get("cache"), errors)
    transformations.validate_compression(doc.get("compression"), errors)
    validate_guards(doc, errors)
    validate_access(doc, errors)
    if doc.get("ai_policy") is not None and not isinstance(doc.get("ai_policy"), dict):
        _add(errors, "ai_policy", "Must be an object or null.")
    if isinstance(doc.get("ai_policy"), dict):
        _validate_ai_policy(doc["ai_policy"], doc.get("backends"), errors)
    if segments is not None and doc.get("enabled") and not errors.get("methods"):
        _validate_unique(doc, canonical_pattern(segments), others, errors)
    return errors


def _validate_int(doc: dict[str, Any], field: str, low: int, high: int, errors: Errors) -> None:
    value = doc.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _add(errors, field, f"Must be a whole number from {low} to {high}.")


def _validate_methods(methods: Any, errors: Errors) -> None:
    if not isinstance(methods, list) or not methods:
        _add(errors, "methods", "List at least one HTTP method, like [\"GET\"].")
        return
    bad = [m for m in methods if m not in HTTP_METHODS]
    if bad:
        _add(errors, "methods", f"Not HTTP methods: {', '.join(map(str, bad))}. Use {', '.join(HTTP_METHODS)}.")


def _validate_backends(backends: Any, protocol: str, errors: Errors) -> None:
    if not isinstance(backends, list) or not backends:
        _add(errors, "backends", "List at least one backend, like [{\"host\": \"http://10.0.0.5\", \"port\": 8080}].")
        return
    allowed = SCHEMES_BY_PROTOCOL[protocol]
    for index, backend in enumerate(backends):
        prefix = f"backends[{index}]"
        if not isinstance(backend, dict):
            _add(errors, prefix, "Must be an object with host and port.")
            continue
        host = backend.get("host")
        if not isinstance(host, str) or not host.strip():
            _add(errors, f"{prefix}.host", "The host is required, like \"http://10.0.0.5\".")
        else:
            scheme, hostname = split_backend_host(host.strip(), protocol)
            if scheme not in allowed:
                _add(errors, f"{prefix}.host",
                     f"A {protocol} route needs a backend scheme of {' or '.join(allowed)}, not '{scheme}'.")
            if not _valid_hostname(hostname):
                _add(errors, f"{prefix}.host", f"'{hostname}' is not a host name or IP address (no path or port here).")
            elif problem := network_safety.host_error(hostname):
                _add(errors, f"{prefix}.host", problem)
        port = backend.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            _add(errors, f"{prefix}.port", "Must be a whole number from 1 to 65535.")
        weight = backend.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
            _add(errors, f"{prefix}.weight", "Must be a whole number from 1 to 1000.")
        check = backend.get("health_check_path")
        if check is not None and (not isinstance(check, str) or not check.startswith("/")
                                  or len(check) > MAX_PATH_LENGTH):
            _add(errors, f"{prefix}.health_check_path",
                 f"Must be null or a path starting with '/' (at most {MAX_PATH_LENGTH} characters).")
        if not isinstance(backend.get("enabled"), bool):
            _add(errors, f"{prefix}.enabled", "Must be true or false.")


def _valid_hostname(hostname: str) -> bool:
    candidate = hostname[1:-1] if hostname.startswith("[") and hostname.endswith("]") else hostname
    try:
        ipaddress.ip_address(candidate)
        return True
    except ValueError:
        return bool(HOSTNAME.match(hostname))


def _validate_ai_policy(policy: dict[str, Any], backends: Any, errors: Errors) -> None:
    if "enabled" in policy and not isinstance(policy["enabled"], bool):
        _add(errors, "ai_policy.enabled", "Must be true or false.")
    provider = policy.get("provider")
    if provider is not None and not isinstance(provider, str):
        _add(errors, "ai_policy.provider", "Must be a provider name like \"openai\", or null.")
    index = policy.get("fallback_backend_index")
    if index is None:
        return
    count = len(backends) if isinstance(backends, list) else 0
    # The fallback names a backend by position, so it has to point inside the list.
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < max(count, 1):
        _add(errors, "ai_policy.fallback_backend_index",
             f"Must be null or the position of a backend (0 to {max(count - 1, 0)}).")


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
