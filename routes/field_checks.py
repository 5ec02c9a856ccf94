"""The rules of the route document's top-level fields, as routes.schema declares them, and of its backends.

Each check takes (the field's declaration, its value, the whole canonical document, the errors) and adds its
messages at the field's path (`external_path`, `backends[0].port`). Fields of a plain kind (int, bool, choice)
share one rule per kind; the rest have their own. The blocks are checked by the data plane's compilers
(routes.resilience_blocks, routes.transformations, routes.guard_blocks, routes.access_blocks).
"""
from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from cryptography import x509

from protocols.ai.config import ai_policy
from protocols.block_errors import BlockError, unknown_key_message
from protocols.discovery import discovery_spec
from protocols.llm.config import llm_policy
from protocols.patterns import MAX_PATH_LENGTH, PatternError, parse_pattern, parse_template
from protocols.plugins import plugin_entries
from routes import network_safety
from routes.resilience_blocks import validate_block

MAX_DESCRIPTION_LENGTH = 500  # a backend's description, as routes.models stores it

if TYPE_CHECKING:
    from routes.schema import Field

Errors = dict[str, list[str]]

SCHEMES_BY_PROTOCOL = {
    "http": ("http", "https"),
    "websocket": ("ws", "wss", "http", "https"),
    "ftp": ("ftp", "ftps"),
    "dns": ("dns",),
    # gRPC is HTTP/2: cleartext (prior knowledge) to http backends, over TLS (ALPN h2) to https ones.
    "grpc": ("http", "https"),
}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21, "ftps": 21, "dns": 53}
TLS_SCHEMES = frozenset({"https", "wss", "ftps"})
# A backend's `tls` options (BackendSpec.tls_ca, tls_server_name, tls_verify) and their defaults: the system's CAs,
# the backend's host as the name, verification on. Only the HTTP and WebSocket clients read them.
BACKEND_TLS_KEYS = {"ca": "", "server_name": "", "verify": True}
BACKEND_TLS_SCHEMES = ("https", "wss")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$)({_LABEL})(\.{_LABEL})*\.?$")
MATCH_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,99}$")
# A gRPC backend's health_check_path: "/" (the whole server) or "/" and a service name (grpc.health.v1).
GRPC_HEALTH_SERVICE = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$")


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


# --- One rule per plain kind ---------------------------------------------------------------------------------

def check_int(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not field.low <= value <= field.high:
        _add(errors, field.name, f"Must be a whole number from {field.low} to {field.high}.")


def check_bool(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if not isinstance(value, bool):
        _add(errors, field.name, "Must be true or false.")


def check_choice(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if value not in field.choices:
        _add(errors, field.name, f"Must be one of: {', '.join(field.choices)}.")


def check_nothing(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """The id: read-only, set by the service layer."""


KIND_CHECKS = {"int": check_int, "bool": check_bool, "choice": check_choice, "id": check_nothing}


# --- Fields with rules of their own --------------------------------------------------------------------------

def check_name(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if not isinstance(value, str) or not NAME.match(value):
        _add(errors, field.name, "Use 1 to 100 letters, digits, spaces or '_.:-', starting with a letter or digit.")


def check_external_path(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    try:
        parse_pattern(value)
    except PatternError as exc:
        _add(errors, field.name, str(exc))


def check_internal_path(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if not isinstance(value, str):
        _add(errors, field.name, "Must be a string (empty forwards the request path unchanged).")
        return
    if len(value) > MAX_PATH_LENGTH:
        _add(errors, field.name, f"Must be at most {MAX_PATH_LENGTH} characters.")
        return
    try:
        segments = parse_pattern(doc.get("external_path"))  # type: ignore[arg-type]
    except PatternError:
        return  # the external path's own error says it; the template cannot be judged without it
    try:
        parse_template(value, frozenset(s.text for s in segments if s.is_param))
    except PatternError as exc:
        _add(errors, field.name, str(exc))


def check_methods(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if not isinstance(value, list) or not value:
        _add(errors, field.name, "List at least one HTTP method, like [\"GET\"].")
        return
    bad = [m for m in value if m not in field.choices]
    if bad:
        _add(errors, field.name,
             f"Not HTTP methods: {', '.join(map(str, bad))}. Use {', '.join(field.choices)}.")


def check_match_host(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    if not isinstance(value, str) or (value and not MATCH_HOST.match(value)):
        _add(errors, field.name, "Must be empty, a host name, or a wildcard like *.example.com (no port).")


def split_backend_host(host: str, protocol: str) -> tuple[str, str]:
    """`http://example.com` -> ("http", "example.com"); a bare host takes the protocol's first scheme."""
    if "://" in host:
        scheme, _, rest = host.partition("://")
        return scheme.lower(), rest.rstrip("/")
    return SCHEMES_BY_PROTOCOL.get(protocol, ("http",))[0], host.rstrip("/")


def check_backends(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    protocol = doc.get("protocol")
    if protocol == "llm":
        if value:  # stored, they would never be asked
            _add(errors, field.name, "An llm route's models are its llm.targets: leave backends empty.")
        return
    if protocol not in SCHEMES_BY_PROTOCOL:
        return  # the protocol's own error says it; schemes depend on it
    if not isinstance(value, list) or not value:
        _add(errors, field.name,
             "List at least one backend, like [{\"host\": \"http://10.0.0.5\", \"port\": 8080}].")
        return
    allowed = SCHEMES_BY_PROTOCOL[protocol]
    for index, backend in enumerate(value):
        prefix = f"{field.name}[{index}]"
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
        elif check is not None and protocol == "grpc" and not GRPC_HEALTH_SERVICE.match(check):
            _add(errors, f"{prefix}.health_check_path",
                 "On a grpc route this names the service gRPC's health check asks about: '/' for the whole server, "
                 "or '/' and a service name like '/my.pkg.Service'.")
        if not isinstance(backend.get("enabled"), bool):
            _add(errors, f"{prefix}.enabled", "Must be true or false.")
        description = backend.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
            _add(errors, f"{prefix}.description", f"Must be text of at most {MAX_DESCRIPTION_LENGTH} characters.")
        if backend.get("discovery") is not None:
            _check_discovery(prefix, backend, protocol, doc, errors)
        if backend.get("tls") is not None:
            _check_backend_tls(prefix, backend, protocol, errors)


def _check_backend_tls(prefix: str, backend: dict[str, Any], protocol: str, errors: Errors) -> None:
    """A backend's `tls` options: known keys only, a CA bundle that parses, a DNS name, on an https/wss backend."""
    where = f"{prefix}.tls"
    options = backend["tls"]
    if not isinstance(options, dict):
        _add(errors, where, 'Must be an object like {"ca": "-----BEGIN CERTIFICATE-----...", "server_name": '
                            '"api.internal", "verify": true}, or null.')
        return
    for key in options:
        if key not in BACKEND_TLS_KEYS:
            _add(errors, f"{where}.{key}", unknown_key_message("backends[].tls", key, BACKEND_TLS_KEYS))
    host = backend.get("host")
    if isinstance(host, str) and host.strip():
        scheme, _ = split_backend_host(host.strip(), protocol)
        if scheme not in BACKEND_TLS_SCHEMES:
            _add(errors, where, f"TLS options apply to {' and '.join(BACKEND_TLS_SCHEMES)} backends; this one is "
                                f"{scheme}: remove tls (null), or use an https backend.")
    bundle = options.get("ca", "")
    if not isinstance(bundle, str):
        _add(errors, f"{where}.ca", "Must be a PEM bundle of CA certificates (text).")
    elif bundle.strip():
        try:
            x509.load_pem_x509_certificates(bundle.encode())
        except ValueError:
            _add(errors, f"{where}.ca", "Is not a PEM bundle of certificates (-----BEGIN CERTIFICATE-----...).")
    name = options.get("server_name", "")
    if not isinstance(name, str) or (name and (_is_address(name) or not HOSTNAME.match(name))):
        _add(errors, f"{where}.server_name", "Must be a DNS name (sent as SNI and verified), or \"\" for the "
                                             "backend's host.")
    if not isinstance(options.get("verify", True), bool):
        _add(errors, f"{where}.verify", "Must be true or false.")


def _check_discovery(prefix: str, backend: dict[str, Any], protocol: str, doc: dict[str, Any],
                     errors: Errors) -> None:
    """A backend's `discovery`, by the data plane's own compiler, and what it cannot be combined with."""
    where = f"{prefix}.discovery"
    try:
        discovery_spec(backend["discovery"])
    except BlockError as exc:
        for path, messages in exc.prefixed(where).items():
            for message in messages:
                _add(errors, path, message)
        return
    if protocol == "dns":
        _add(errors, where, "A dns route forwards to the resolvers it lists; only http, websocket and ftp routes "
                            "discover their backends: remove discovery (null).")
        return
    host = backend.get("host")
    if isinstance(host, str) and host.strip():
        scheme, hostname = split_backend_host(host.strip(), protocol)
        if scheme in TLS_SCHEMES and scheme != "https":
            # https addresses keep their DNS name for TLS (protocols.discovery); the WebSocket and FTP clients
            # would still name the address, which a certificate does not.
            plain = " or ".join(s for s in SCHEMES_BY_PROTOCOL[protocol] if s not in TLS_SCHEMES)
            _add(errors, where, f"Discovered {scheme} backends are reached by address, which a certificate does not "
                                f"name: use {plain}, or list the backend without discovery (https backends can "
                                f"discover).")
        if _is_address(hostname):
            _add(errors, f"{prefix}.host", "Discovery resolves a DNS name: give one here (an SRV name like "
                                           "_http._tcp.api.internal for type srv), not an address.")
    if backend.get("health_check_path") is not None:
        _add(errors, f"{prefix}.health_check_path",
             "A discovered backend's addresses are not probed one by one: leave it null (each address has its "
             "own circuit breaker, circuit_breaker).")
    if doc.get("ai_policy") is not None:
        _add(errors, where, "AI routing chooses backends by position, which discovered addresses do not keep: "
                            "remove discovery or the route's ai_policy.")


def _valid_hostname(hostname: str) -> bool:
    return _is_address(hostname) or bool(HOSTNAME.match(hostname))


def _is_address(hostname: str) -> bool:
    candidate = hostname[1:-1] if hostname.startswith("[") and hostname.endswith("]") else hostname
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


# --- Blocks whose checks live here ---------------------------------------------------------------------------

def check_resilience(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """`retry`, `health_check`, `circuit_breaker`: by the ranges routes.resilience_blocks declares."""
    validate_block(field.name, value, errors)


def check_llm(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """`llm`, by the data plane's own compiler; required on llm routes. A target's key unset where this runs is
    not an error here: the gateway reads it where it runs (protocols.llm.targets)."""
    if value is None:
        if doc.get("protocol") == "llm":
            _add(errors, field.name, 'Required on llm routes: their models, like {"targets": [{"provider": '
                                     '"openai", "model": "gpt-4o-mini"}]}.')
        return
    try:
        llm_policy(value, route_name=str(doc.get("name") or ""))
    except BlockError as exc:
        for path, messages in exc.prefixed(field.name).items():
            for message in messages:
                _add(errors, path, message)


def check_plugins(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """`plugins`, by the data plane's own reading of the list, each installed plugin judging its own config."""
    try:
        plugin_entries(value)
    except BlockError as exc:
        for path, messages in exc.prefixed(field.name).items():
            for message in messages:
                _add(errors, path, message)


def check_ai_policy(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """`ai_policy`, by the data plane's own compiler. A provider or model may still come from the gateway-wide
    `ai` block, which is checked on its own (a route is not refused for what the settings will supply)."""
    backends = doc.get("backends")
    try:
        ai_policy(value, None, len(backends) if isinstance(backends, list) else 0)
    except BlockError as exc:
        for path, messages in exc.prefixed(field.name).items():
            for message in messages:
                _add(errors, path, message)
