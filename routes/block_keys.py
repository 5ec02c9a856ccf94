"""Every block of a route or of the gateway settings: the keys it accepts and each key's default, declared once.

Validation refuses any other key by its path with `unknown_key_message`, an import lists it (leaving it out, or
refusing it: see `BlockKeys.import_drops`), the admin's help texts quote the defaults, and the README's table
of block keys is checked against this table by a test. A default comes from the data plane's own declaration
wherever the data plane has one (protocols.resilience, .guards, .cache, ...), so the number the proxy applies is
the number shown; `NO_DEFAULT` marks a key that is unset unless given (a rule list, a secret, a required value).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocols.abuse import config as abuse_config
from protocols.ai import config as ai_config
from protocols.apidocs import config as apidocs_config
from protocols.auth.config import DEFAULTS as JWT_DEFAULTS
from protocols.auth.config import KNOWN_KEYS as JWT_KEYS
from protocols.block_errors import unknown_key_message
from protocols.cache.config import DEFAULT_MAX_BODY as CACHE_MAX_BODY
from protocols.cache.config import DEFAULT_STATUSES as CACHE_STATUSES
from protocols.cache.config import DEFAULT_TTL_S, CachePolicy
from protocols.compression.config import CODINGS, DEFAULT_CONTENT_TYPES, DEFAULT_MIN_BYTES, DEFAULT_POLICY
from protocols.ftp.config import DEFAULT_SETTINGS as FTP_DEFAULTS
from protocols.guards import cors, limits, security
from protocols.limits.config import RateLimitPolicy
from protocols.llm import config as llm_config
from protocols.llm.targets import TARGET_KEYS
from protocols.plugins import config as plugin_config
from protocols.resilience import DEFAULT_BREAKER, DEFAULT_RETRY
from protocols.tls import policy as tls_policy
from protocols.transform.body import DEFAULT_MAX_BODY as TRANSFORM_MAX_BODY
from protocols.websocket.config import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES


class _NoDefault:
    """The marker of a key that has no default: unset (no rule, no secret, no limit) unless given."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True)
class BlockKeys:
    """One block's keys. `keys` maps each key to its default (JSON values) or NO_DEFAULT.

    `notes`: keys starting with `_` are notes (`_comment`), kept and ignored; False where the data plane's
    compiler refuses them. `import_drops`: an import without --strict leaves an unknown key out (listing it),
    where leaving it out only leaves a default in force; False for the access and guard blocks, which decide
    who gets in and how much (a misspelt `alow` would leave the route open), where even a lenient import
    refuses it.
    `nested`: keys holding a list of objects, with the keys each object accepts.
    `listed`: the block is a list of entries (`plugins`), each an object with these keys, not one object.
    """

    keys: Mapping[str, Any]
    notes: bool = True
    import_drops: bool = True
    nested: Mapping[str, frozenset[str]] = field(default_factory=dict)
    listed: bool = False

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.keys)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _seconds_to_ms(seconds: float) -> int:
    return round(seconds * 1000)


def _none(*keys: str) -> dict[str, Any]:
    return dict.fromkeys(keys, NO_DEFAULT)


_RETRY = DEFAULT_RETRY
_BREAKER = DEFAULT_BREAKER
_RATE = RateLimitPolicy()
_CACHE = CachePolicy()

BLOCKS: dict[str, BlockKeys] = {
    "retry": BlockKeys({
        "max_retries": _RETRY.max_retries,
        "initial_backoff_ms": _seconds_to_ms(_RETRY.initial_backoff),
        "max_backoff_ms": _seconds_to_ms(_RETRY.max_backoff),
        "backoff_multiplier": _number(_RETRY.backoff_multiplier),
        "retry_on_status_codes": sorted(_RETRY.on_status),
        "retry_on_connection_error": _RETRY.on_connection_error,
        "retry_non_idempotent": _RETRY.non_idempotent,
        "budget_ratio": _RETRY.budget_ratio,
        "budget_window_s": _number(_RETRY.budget_window),
        "budget_min_per_s": _number(_RETRY.budget_min_per_s),
    }),
    # Read by the control plane's probes (routes.health.checks, through routes.resilience_blocks.health_check_settings);
    # `healthy_statuses: null` means any 2xx or 3xx answer.
    "health_check": BlockKeys({"interval_s": 5, "timeout_ms": 2000, "healthy_threshold": 2, "unhealthy_threshold": 3,
                               "healthy_statuses": None}),
    "circuit_breaker": BlockKeys({
        "enabled": _BREAKER.enabled,
        "failure_threshold": _BREAKER.failure_threshold,
        "failure_ratio": _BREAKER.failure_ratio,
        "window_s": _number(_BREAKER.window),
        "min_requests": _BREAKER.min_requests,
        "open_s": _number(_BREAKER.open_s),
        "half_open_requests": _BREAKER.half_open_requests,
        "success_threshold": _BREAKER.success_threshold,
        "failure_statuses": sorted(_BREAKER.failure_statuses),
    }),
    "request_transformation": BlockKeys({**_none("headers", "path", "query_params", "body"),
                                         "max_body_bytes": TRANSFORM_MAX_BODY}),
    "response_transformation": BlockKeys({**_none("headers", "status_code_mappings", "body"),
                                          "max_body_bytes": TRANSFORM_MAX_BODY}),
    "cache": BlockKeys({
        "enabled": True, "ttl_s": DEFAULT_TTL_S, "vary_headers": [], "store_set_cookie": _CACHE.store_set_cookie,
        "stale_if_error_s": _number(_CACHE.stale_if_error_s), "max_body_bytes": CACHE_MAX_BODY,
        "methods": sorted(_CACHE.methods), "statuses": sorted(CACHE_STATUSES), "coalesce": _CACHE.coalesce,
        "coalesce_wait_s": _number(_CACHE.coalesce_wait_s),
    }),
    "compression": BlockKeys({
        "enabled": True, "algorithms": list(CODINGS), "content_types": list(DEFAULT_CONTENT_TYPES),
        "min_bytes": DEFAULT_MIN_BYTES, "gzip_level": DEFAULT_POLICY.gzip_level,
        "brotli_quality": DEFAULT_POLICY.brotli_quality, "zstd_level": DEFAULT_POLICY.zstd_level,
    }),
    "rate_limit": BlockKeys({
        **_none("strategy", "window_type", "limit", "requests_per_window", "requests_per_second",
                "requests_per_minute", "requests_per_hour", "burst", "burst_size", "burst_allowance", "header",
                "fallback_limit", "enable_redis"),
        # A limit without its window is refused (routes.access_blocks): there is no default window.
        **_none("window_s", "window_duration"),
        "algorithm": _RATE.algorithm, "scope": list(_RATE.scope), "api_key_header": _RATE.api_key_header.decode(),
        "missing_identity": _RATE.missing_identity, "store": _RATE.store, "on_store_error": _RATE.on_store_error,
        "key_prefix": "", "redis_key_prefix": "", "enabled": _RATE.enabled,
    }, notes=False, import_drops=False),
    # AI routing (protocols.ai.config); `api_key` is the route's own provider key (a secret). The provider keys
    # default to the gateway-wide `ai` block's.
    "ai_policy": BlockKeys({
        "enabled": True, "strategy": NO_DEFAULT, "fallback_backend_index": None,
        "decision_timeout_ms": ai_config.DEFAULT_DECISION_TIMEOUT_MS, "decision_header": False,
        **_none(*ai_config.LLM_KEYS), "fallback_providers": [], "streaming": False,
        **{key: option.default for options in ai_config.STRATEGY_OPTIONS.values()
           for key, option in options.items()},
        "options": {},
    }),
    "cors": BlockKeys({
        "enabled": True, "origins": NO_DEFAULT, "methods": list(cors.DEFAULT_METHODS), "headers": None,
        "exposed_headers": [], "credentials": False, "max_age": cors.DEFAULT_MAX_AGE,
    }, import_drops=False),
    "limits": BlockKeys({
        "max_body_bytes": limits.DEFAULT_MAX_BODY_BYTES, "max_header_bytes": limits.DEFAULT_MAX_HEADER_BYTES,
        "max_header_count": limits.DEFAULT_MAX_HEADER_COUNT, "max_url_length": limits.DEFAULT_MAX_URL_LENGTH,
    }, import_drops=False),
    "ip_rules": BlockKeys({"enabled": True, "allow": [], "deny": []}, import_drops=False),
    "security_headers": BlockKeys({
        "enabled": True, "content_type_options": True, "frame_options": "DENY", "referrer_policy": "no-referrer",
        "hsts_max_age": security.DEFAULT_HSTS_MAX_AGE, "hsts_include_subdomains": False, "hsts_preload": False,
        "content_security_policy": None, "override": False,
    }, import_drops=False),
    "jwt": BlockKeys(
        {**_none(*sorted(JWT_KEYS)), **{key: _number(value) if isinstance(value, float) else value
                                        for key, value in JWT_DEFAULTS.items()}},
        notes=False, import_drops=False, nested={"public_keys": frozenset({"pem", "algorithm", "kid"})}),
    "ftp": BlockKeys({"username": FTP_DEFAULTS.username, "password": FTP_DEFAULTS.password,
                      "passthrough_basic_auth": FTP_DEFAULTS.passthrough, "root": FTP_DEFAULTS.root},
                     import_drops=False),
    "websocket": BlockKeys({"max_message_bytes": DEFAULT_MAX_MESSAGE_BYTES,
                            "idle_timeout_s": _number(DEFAULT_IDLE_TIMEOUT)}, import_drops=False),
    # TLS on the proxy listener (protocols.tls.policy): the compiler's own keys and defaults; `client_ca` is public
    # material (the CAs a client certificate must chain to), never redacted.
    "tls": BlockKeys(dict(tls_policy.KEYS), notes=False, import_drops=False),
    # Traffic intelligence (protocols.abuse, protocols.apidocs): the compilers' own keys and defaults; `openapi` is
    # the declared document the learned one is compared with.
    "abuse": BlockKeys(dict(abuse_config.KEYS), import_drops=False),
    "api_docs": BlockKeys(dict(apidocs_config.KEYS)),
    # Gateway settings only: the LLM that routes with an `ai_policy` ask unless they name their own.
    "ai": BlockKeys({**_none("provider", "model", "api_key", "base_url"),
                     "timeout_ms": ai_config.DEFAULT_PROVIDER_TIMEOUT_MS,
                     "max_concurrency": ai_config.DEFAULT_MAX_CONCURRENCY}, notes=False),
    # An llm route's models and what limits them (protocols.llm.config); its targets' keys are listed here too, so
    # a misspelt one is refused in the same words as any block's.
    "llm": BlockKeys({"targets": NO_DEFAULT, "guard": NO_DEFAULT, "token_limits": NO_DEFAULT, "budgets": NO_DEFAULT,
                      "on_store_error": "open", "cache": None,
                      "max_body_bytes": llm_config.DEFAULT_MAX_BODY_BYTES},
                     notes=False, import_drops=False, nested={"targets": frozenset(TARGET_KEYS)}),
    # A list: each entry names an installed plugin; its `config` holds the plugin's own keys, which the plugin's
    # `check_config` judges (protocols.plugins).
    "plugins": BlockKeys({"name": NO_DEFAULT, "config": {}, "order": plugin_config.DEFAULT_ORDER,
                          "timeout_ms": plugin_config.DEFAULT_TIMEOUT_MS, "on_error": plugin_config.DEFAULT_ON_ERROR},
                         notes=False, import_drops=False, listed=True),
}


def _is_note(spec: BlockKeys, key: Any) -> bool:
    return spec.notes and str(key).startswith("_")


def unknown_paths(block: str, value: Any, prefix: str | None = None) -> dict[str, str]:
    """`{path: message}` for each key `value` (block `block`, reported under `prefix`, by default the block's
    name) does not know, nested objects included; {} for a block the table has no entry for, or not an object."""
    spec = BLOCKS.get(block)
    where = block if prefix is None else prefix
    if spec is not None and spec.listed and isinstance(value, list):
        return {path: message for index, entry in enumerate(value)
                for path, message in _unknown_in(block, spec, entry, f"{where}[{index}]").items()}
    if spec is None or not isinstance(value, dict):
        return {}
    return _unknown_in(block, spec, value, where)


def _unknown_in(block: str, spec: BlockKeys, value: Any, where: str) -> dict[str, str]:
    """unknown_paths of one object of the block (the block itself, or one entry of a listed block)."""
    if not isinstance(value, dict):
        return {}
    found = {f"{where}.{key}": unknown_key_message(block, key, spec.known)
             for key in value if key not in spec.keys and not _is_note(spec, key)}
    for key, known in spec.nested.items():
        items = value.get(key)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                found.update({f"{where}.{key}[{index}].{name}": unknown_key_message(f"{block}.{key}[]", name, known)
                              for name in item if name not in known})
    return found


def without_unknown(block: str, value: Any) -> Any:
    """A copy of the block without the keys `unknown_paths` reports (and without notes where the block has none);
    anything that is not an object is returned as is."""
    spec = BLOCKS.get(block)
    if spec is not None and spec.listed and isinstance(value, list):
        return [_known_only(spec, entry) for entry in value]
    if spec is None or not isinstance(value, dict):
        return value
    return _known_only(spec, value)


def _known_only(spec: BlockKeys, value: Any) -> Any:
    """without_unknown of one object of the block."""
    if not isinstance(value, dict):
        return value
    out = {key: item for key, item in value.items() if key in spec.keys or _is_note(spec, key)}
    for key, known in spec.nested.items():
        if isinstance(out.get(key), list):
            out[key] = [{name: v for name, v in item.items() if name in known} if isinstance(item, dict) else item
                        for item in out[key]]
    return out


def defaults(block: str) -> dict[str, Any]:
    """The keys of a block that have a default, with it."""
    return {key: value for key, value in BLOCKS[block].keys.items() if value is not NO_DEFAULT}


def default_text(value: Any) -> str:
    """A default as the README and the admin write it: JSON, or `—` for none."""
    return "—" if value is NO_DEFAULT else json.dumps(value)


def keys_summary(block: str) -> str:
    """`key (default), ...` of every key of a block, for help texts."""
    return ", ".join(f"{key} ({default_text(value)})" for key, value in BLOCKS[block].keys.items())


def refuse_unknown(block: str, value: Any, errors: dict[str, list[str]], prefix: str | None = None) -> Any:
    """Add an error for each key of the block it does not know (at its path) and return the block without them,
    for the block's own checks, which then judge only the keys it has."""
    for path, message in unknown_paths(block, value, prefix).items():
        errors.setdefault(path, []).append(message)
    return without_unknown(block, value)
