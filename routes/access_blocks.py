"""The control plane's checks of the access blocks (`jwt`, `rate_limit`, `ftp`, `websocket`, `tls`) of routes and
settings.

`jwt`, `rate_limit` and `tls` are compiled with the data plane's own compilers (JwtPolicy, RateLimitPolicy,
protocols.tls.policy), so what is saved is exactly what the proxy accepts; their BlockError carries each problem's
path inside the block, filed here under the block's name (`rate_limit.window_type`, `jwt.algorithms`). The `ftp`
and `websocket` parsers never raise (a bad value falls back to its default at run time), so their rules are checked
here, with the data plane's limits, before the parser compiles the block. Nothing here touches the network: a
`jwks_url` is checked for shape and address only.
"""
from __future__ import annotations

from typing import Any

from protocols.auth import JwtPolicy
from protocols.block_errors import BlockError
from protocols.ftp.config import ftp_settings
from protocols.ftp.paths import PathRejected, check_text, route_root
from protocols.limits import RateLimitPolicy
from protocols.plan import CLIENT_CERTIFICATE_PROTOCOLS
from protocols.tls.policy import compile_tls_policy
from protocols.websocket.config import MAX_IDLE_TIMEOUT_S, MAX_MESSAGE_BYTES_LIMIT
from routes import network_safety
from routes.block_keys import refuse_unknown

Errors = dict[str, list[str]]


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _merge(errors: Errors, found: Errors) -> None:
    for field, messages in found.items():
        errors.setdefault(field, []).extend(messages)


def validate_jwt(value: Any, errors: Errors, block: str = "jwt") -> None:
    """Compile a `jwt` block with JwtPolicy (no fetch: a JWKS is only read at request time or prefetch)."""
    if value is None:
        return
    if not isinstance(value, dict):
        _add(errors, block, "Must be an object or null.")
        return
    value = refuse_unknown(block, value, errors)
    problem = network_safety.url_error(value.get("jwks_url"))
    if problem:
        _add(errors, f"{block}.jwks_url", problem)
    try:
        JwtPolicy.from_config(value)
    except BlockError as exc:
        _merge(errors, exc.prefixed(block))


def validate_rate_limit(value: Any, errors: Errors, block: str = "rate_limit") -> None:
    """Compile a `rate_limit` block with RateLimitPolicy; a limit must come with its window."""
    if value is None:
        return
    if not isinstance(value, dict):
        _add(errors, block, "Must be an object or null.")
        return
    known = refuse_unknown(block, value, errors)
    try:
        RateLimitPolicy.from_config(known)
    except BlockError as exc:
        _merge(errors, exc.prefixed(block))
        return
    # A misspelt window key (`windw_s`) is already reported: the window is not missing, only misnamed.
    misspelt = any(path.startswith(f"{block}.") for path in errors)
    if not misspelt and known.get("enabled") is not False and (missing := _missing_window(known)):
        _add(errors, f"{block}.{missing}", "A limit needs its window in seconds; or give requests_per_second, "
                                           "requests_per_minute or requests_per_hour.")


def _missing_window(block: dict[str, Any]) -> str | None:
    """The window key a `limit` or `requests_per_window` lacks (the README promises no default window)."""
    for limit, window in (("limit", "window_s"), ("requests_per_window", "window_duration")):
        if block.get(limit) is not None and block.get("window_s") is None and block.get("window_duration") is None:
            return window
    return None


def validate_ftp(value: Any, errors: Errors) -> None:
    """An `ftp` block: strings for the login and root, a boolean passthrough; then the parser's own checks of
    the credentials (no control characters) and of the root (confined, no backslash)."""
    if value is None:
        return
    if not isinstance(value, dict):
        _add(errors, "ftp", "Must be an object or null.")
        return
    value = refuse_unknown("ftp", value, errors)
    before = len(errors)
    for key in ("username", "password", "root"):
        if value.get(key) is not None and not isinstance(value[key], str):
            _add(errors, f"ftp.{key}", "Must be a string or null.")
    passthrough = value.get("passthrough_basic_auth")
    if passthrough is not None and not isinstance(passthrough, bool):
        _add(errors, "ftp.passthrough_basic_auth", "Must be true or false.")
    if len(errors) != before:
        return
    settings = ftp_settings("", {"ftp": value})
    for key, text, what in (("username", settings.username, "user name"), ("password", settings.password,
                                                                             "password")):
        try:
            check_text(text, what)
        except PathRejected as exc:
            _add(errors, f"ftp.{key}", str(exc))  # the message names the problem, never the value
    if settings.root:
        try:
            route_root(settings.root, "", {})
        except PathRejected as exc:
            _add(errors, "ftp.root", str(exc))


def validate_websocket(value: Any, errors: Errors) -> None:
    """A `websocket` block, by the limits protocols.websocket.config applies."""
    if value is None:
        return
    if not isinstance(value, dict):
        _add(errors, "websocket", "Must be an object or null.")
        return
    value = refuse_unknown("websocket", value, errors)
    size = value.get("max_message_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or not 1 <= size <= MAX_MESSAGE_BYTES_LIMIT):
        _add(errors, "websocket.max_message_bytes", f"Must be a whole number from 1 to {MAX_MESSAGE_BYTES_LIMIT}.")
    idle = value.get("idle_timeout_s")
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, int | float)
                             or not 0 <= idle <= MAX_IDLE_TIMEOUT_S):
        _add(errors, "websocket.idle_timeout_s",
             f"Must be a number of seconds from 0 (never) to {MAX_IDLE_TIMEOUT_S} (a week).")


def validate_tls(value: Any, errors: Errors, protocol: Any = "http") -> None:
    """A route's `tls` block, by the data plane's own compiler (the listener's redirect and client certificates),
    client certificates only on the routes whose proxy checks them: the data plane refuses (503) any other route
    that asks for them rather than let anyone in."""
    try:
        policy = compile_tls_policy(value)
    except BlockError as exc:
        _merge(errors, exc.prefixed("tls"))
        return
    if policy.wants_client_certificate and isinstance(protocol, str) and protocol not in CLIENT_CERTIFICATE_PROTOCOLS:
        checked = " and ".join(sorted(CLIENT_CERTIFICATE_PROTOCOLS))
        _add(errors, "tls.client_certificate", f"Client certificates are checked on {checked} routes only and this "
                                               f"route's protocol is {protocol}: use \"off\".")


def validate_settings_access(blocks: dict[str, Any], errors: Errors) -> None:
    """Errors of the gateway-wide `jwt` and `rate_limit` blocks (a block that is not an object is the caller's
    to report)."""
    if isinstance(blocks.get("jwt"), dict):
        validate_jwt(blocks["jwt"], errors)
    if isinstance(blocks.get("rate_limit"), dict):
        validate_rate_limit(blocks["rate_limit"], errors)
