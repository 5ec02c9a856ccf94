"""JWT bearer authentication for the data plane: compile a `jwt` block once, check a request's token fast.

Wiring (ProxyApp, for a route with `auth_required` or its own `jwt` block)::

    policy = JwtPolicy.from_config(block)        # when the route table is built; BlockError -> refuse config
    await policy.prefetch()                      # optional, at start-up: warm the JWKS cache

    # per request, after matching the route:
    principal = await policy.authenticate(authorization_value(scope["headers"]))
    headers = policy.strip_forwarded(client_headers) + list(principal.headers)

`authenticate` raises only `GatewayError` subclasses, so ProxyApp's existing `except GatewayError` answers
them (JSON body + the error's headers):
- `AuthFailure` 401: no token (`WWW-Authenticate: Bearer`, no error attribute), `invalid_request` (malformed
  Authorization field), `invalid_token` (bad signature, algorithm not accepted, expired, not yet valid,
  issued in the future, wrong issuer or audience, missing required claim, unknown kid);
  403 `insufficient_scope` (valid token without a required scope or role; `scope="..."` names the scopes).
  `exc.www_authenticate` is the header value; `exc.status`, `exc.error`, `exc.description` are attributes.
- `KeysUnavailable` 503 + Retry-After: only with `jwks_url`, only before the first successful fetch.
The client's copies of the forwarded headers must be removed before the claims' ones are added
(`strip_forwarded`), or a client could send its own `X-User-Id`.

Config keys (the earlier gateway's `secret`, `issuer`, `audience`, `required_claims` work unchanged):
- keys: `secret` (HS*, at least 32/48/64 bytes for HS256/384/512), `public_key` + `algorithm` (PEM public
  key or certificate), `public_keys` ([{"pem", "algorithm", "kid"?}]), `jwks_url` (http(s)).
- `algorithms`: default derived from the keys: HS256 for a secret, each public key's algorithm, RS256 for
  a jwks_url. Every key is pinned to one algorithm; `none` is refused in config and never accepted; a token
  is only checked against keys of its own `alg` (so an HS256 token is never checked against an RSA key:
  the HS/RS confusion cannot happen). RS*/PS*/ES256/384/512/ES256K/EdDSA and HS256/384/512 are supported.
- `jwks_cache_s` 300, `jwks_min_refresh_s` 10, `jwks_timeout_s` 5: see `JwksKeySet`.
- `issuer` (string or list), `audience` (string or list; a token with `aud` is refused by a policy without
  `audience`, RFC 7519 4.1.3), `leeway_s` 30 (clock skew allowed on exp/nbf/iat: NTP-synced hosts differ by
  far less, and a longer leeway extends a stolen expired token's life), `require_exp` true (as the earlier
  gateway's JWT library did), `required_claims` (present and not null).
- `required_scopes` (all of them, from `scope` (space-separated), `scp` or `scopes`; `scope_claim` names
  one claim instead), `required_roles` (all of them, from `roles_claim`, default "roles").
- `forward_claims` {"sub": "X-User-Id", ...}: header names the proxy owns (Host, Authorization, X-Forwarded-*,
  ...) are refused.
- `realm` "" (added to WWW-Authenticate when set), `cache_size` 1024 (0: off), `cache_ttl_s` 60: verified
  tokens are remembered (exact token bytes -> Principal) until min(exp, now + cache_ttl_s); the cache is
  cleared when the JWKS key set changes.
"""
from __future__ import annotations

from protocols.auth.challenges import AuthFailure, KeysUnavailable
from protocols.auth.verify import JwtPolicy, Principal, authorization_value

__all__ = ["AuthFailure", "JwtPolicy", "KeysUnavailable", "Principal", "authorization_value"]
