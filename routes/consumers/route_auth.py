"""The check of a route's `auth` field: its mode, the protocols that read it, and how it sits with `auth_required`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routes.schema import Field

Errors = dict[str, list[str]]

# The HTTP proxy, the WebSocket handshake, the LLM front doors and gRPC calls read credentials (all but the LLM
# doors send the consumer upstream, the client's copy stripped); DNS and FTP routes have neither, so any auth but
# none there would be stored and do nothing.
_AUTH_PROTOCOLS = ("http", "websocket", "llm", "grpc")


def check_auth(field: Field, value: Any, doc: dict[str, Any], errors: Errors) -> None:
    """`auth` is one of its choices; key, jwt and either only on http, websocket, llm and grpc routes; and
    `auth_required: true` (which means jwt) or a route `jwt` block never contradicts it."""
    messages: list[str] = []
    if value not in field.choices:
        messages.append(f"Must be one of: {', '.join(field.choices)}.")
    protocol = doc.get("protocol")
    if value in ("key", "jwt", "either") and isinstance(protocol, str) and protocol not in _AUTH_PROTOCOLS:
        messages.append(f"auth \"{value}\" is for http, websocket, llm and grpc routes; this route's protocol is "
                        f"{protocol}.")
    if doc.get("auth_required") is True and value in ("key", "either"):
        messages.append(f"auth_required means a JWT is required, which contradicts auth \"{value}\": set "
                        "auth_required to false (auth alone decides), or auth to \"jwt\".")
    if value == "key" and doc.get("jwt") is not None:
        messages.append("A route with a jwt block requires a JWT, which contradicts auth \"key\": use auth "
                        "\"either\" to take a key or a token, or remove the jwt block.")
    if messages:
        errors.setdefault(field.name, []).extend(messages)
