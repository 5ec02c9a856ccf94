"""Security response headers added by the gateway: on by default, each one configurable or switched off.

Defaults, chosen for a gateway in front of APIs (OWASP's REST guidance, helmet's defaults):
- `X-Content-Type-Options: nosniff`: a JSON answer is never sniffed into HTML or script.
- `X-Frame-Options: DENY`: JSON is never meant to be framed; an HTML application behind the gateway that wants
  framing says so itself (its own X-Frame-Options wins, and browsers ignore X-Frame-Options when its
  Content-Security-Policy has `frame-ancestors`).
- `Referrer-Policy: no-referrer`: URLs with ids or tokens in them do not leak to other sites.
- `Strict-Transport-Security: max-age=31536000` (one year, without includeSubDomains or preload, which would
  bind every sibling host): only on answers to requests that came over https (directly, or from a trusted
  proxy's `X-Forwarded-Proto: https`), as RFC 6797 7.2 requires.
- No Content-Security-Policy by default: a policy strict enough to matter would break HTML applications behind
  the gateway; set `content_security_policy` for API-only routes (`default-src 'none'; frame-ancestors 'none'`).

A backend's own value of any of these fields wins (`override: false`, the default); `override: true` replaces it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.guards.config import BlockReader

Headers = list[tuple[bytes, bytes]]

KEYS = frozenset({"enabled", "content_type_options", "frame_options", "referrer_policy", "hsts_max_age",
                  "hsts_include_subdomains", "hsts_preload", "content_security_policy", "override"})
FRAME_OPTIONS = ("DENY", "SAMEORIGIN")
REFERRER_POLICIES = ("no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
                     "same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url")
DEFAULT_HSTS_MAX_AGE = 31_536_000
HSTS = b"strict-transport-security"


class SecurityHeaders:
    """A compiled `security_headers` block: the fields for plain and for https answers, built once."""

    __slots__ = ("plain", "secure", "override", "names")

    def __init__(self, fields: Headers, hsts: bytes | None, override: bool) -> None:
        self.plain: Headers = list(fields)
        self.secure: Headers = [*fields, (HSTS, hsts)] if hsts else list(fields)
        self.override = override
        self.names = frozenset(name for name, _ in self.secure)

    @classmethod
    def from_config(cls, block: Mapping[str, Any] | None) -> SecurityHeaders:
        """The compiled block (the defaults when it is absent); raises BlockError."""
        reader = BlockReader(block, KEYS)
        enabled = reader.boolean("enabled", True)
        nosniff = reader.boolean("content_type_options", True)
        frame = reader.text_or_off("frame_options", "DENY")
        if frame is not None and frame.upper() not in FRAME_OPTIONS:
            reader.add("frame_options", 'Must be "DENY", "SAMEORIGIN" or false.')
        referrer = reader.text_or_off("referrer_policy", "no-referrer")
        if referrer is not None and any(p.strip() not in REFERRER_POLICIES for p in referrer.split(",")):
            reader.add("referrer_policy", f"Must be one of {', '.join(REFERRER_POLICIES)}, or false.")
        max_age = reader.integer("hsts_max_age", DEFAULT_HSTS_MAX_AGE, 0, 2 * DEFAULT_HSTS_MAX_AGE)
        subdomains = reader.boolean("hsts_include_subdomains", False)
        preload = reader.boolean("hsts_preload", False)
        if preload and (not subdomains or max_age < DEFAULT_HSTS_MAX_AGE):
            reader.add("hsts_preload", "Preload lists require hsts_include_subdomains and a max age of a year.")
        csp = reader.text_or_off("content_security_policy", None)
        override = reader.boolean("override", False)
        reader.finish()
        if not enabled:
            return cls([], None, override)
        fields: Headers = []
        if nosniff:
            fields.append((b"x-content-type-options", b"nosniff"))
        if frame is not None:
            fields.append((b"x-frame-options", frame.upper().encode()))
        if referrer is not None:
            fields.append((b"referrer-policy", referrer.encode()))
        if csp is not None:
            fields.append((b"content-security-policy", csp.encode()))
        hsts = None
        if max_age:
            hsts = b"max-age=%d" % max_age + (b"; includeSubDomains" if subdomains else b"") + (
                b"; preload" if preload else b"")
        return cls(fields, hsts, override)

    def apply(self, headers: Headers, https: bool) -> Headers:
        """`headers` (a response's fields, changed in place) with the security fields added.

        Without `override`, a field the response already has is left as the backend set it.
        """
        fields = self.secure if https else self.plain
        if not fields:
            return headers
        if self.override:
            names = self.names
            headers[:] = [item for item in headers if item[0].lower() not in names]
            headers.extend(fields)
            return headers
        names = self.names
        for name, _ in headers:
            if name.lower() in names:
                break
        else:  # the common case: the backend set none of them
            headers += fields
            return headers
        present = {name.lower() for name, _ in headers}
        headers.extend(item for item in fields if item[0] not in present)
        return headers


DEFAULT_SECURITY_HEADERS = SecurityHeaders.from_config(None)
