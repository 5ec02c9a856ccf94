"""Request and response transformations of a route, compiled once when the table is built (no Django here).

Wiring (ProxyApp; `protocols.shaping` does the response side and the cache/compression around it)::

    # when the route table is built (protocols.block_errors.BlockError -> the route is refused / left out):
    request = RequestTransform.from_config(spec.policies.get("request_transformation"))
    response = ResponseTransform.from_config(spec.policies.get("response_transformation"))

    # per request, in ProxyApp._prepare, in this order:
    forward = request.apply_headers(head.forward)           # before X-Forwarded-*, Via, X-Request-ID are added
    path = request.apply_path(route.upstream_path(params, clean_path))   # after {param} substitution
    query = request.apply_query(scope["query_string"])
    if request.body_applies(scope headers): read the body whole (<= request.max_body_bytes), then
        body = request.apply_json(body); attempt.content_length = len(body)

    # per response, before its head goes out:
    status = response.map_status(upstream.status, method, client_path, upstream.headers)
    fields = response.apply_headers(upstream.headers)
    if response.body_applies(fields): buffer the body (<= response.max_body_bytes; longer: send untouched),
        body = response.apply_json(body); fix Content-Length

Blocks (the earlier gateway's keys work unchanged; `rename`, `body`, object-form lists and real conditions are
Rusta's):

`request_transformation`
    headers         [{"action": "add|set|remove|replace|rename", "name": "X-A", "value": "1",
                      "pattern": "regex", "replacement": "v$1", "to": "X-B"}]  or
                    {"add": {"X-A": "1"}, "set": {...}, "remove": ["X-B"], "rename": {"X-Old": "X-New"},
                     "replace": [{"name": "User-Agent", "pattern": "(\\d+)", "replacement": "v$1"}]}
                    add: only when absent; set: replaces every value; remove; rename: replaces fields already
                    under the new name; replace: every match in every value (`$1`, `${name}`, `$$`).
                    Host, Content-Length, hop-by-hop fields, X-Forwarded-*, Via and X-Request-ID are the
                    gateway's and refused.
    path            {"pattern": "^/api/v1/(.+)$", "replacement": "/$1"} or a list of them: the first match is
                    replaced, applied to the upstream path after `{param}` substitution.
    query_params    [{"action": "add|set|remove|rename", "name": "n", "value": "v", "to": "m"}] or the object
                    form. Untouched parameters keep their exact bytes.
    body            [{"action": "add|set|remove|rename", "path": "user.name", "value": <json>, "to": "a.b"}] or
                    {"add": {"meta.via": "rusta"}, "remove": ["password"], "rename": {"user_name": "username"}}.
    max_body_bytes  1 MiB: JSON bodies over this go through untouched.
`response_transformation`
    headers, body, max_body_bytes   as above (Date, Server, Via, framing and X-Request-ID are refused).
    status_code_mappings  [{"from": 404, "to": 200, "condition": {"methods": [...], "path": "regex",
                           "headers": {"x-mode": "regex", "retry-after": true}}}] or the earlier gateway's
                           condition string "path == '/health' && method == 'GET'" (see conditions.py).

Every regular expression is compiled when the table is built and refused when it could backtrack
catastrophically (see regex.py and protocols.regex_safety).
"""
from __future__ import annotations

from protocols.transform.request import KEYS as REQUEST_KEYS
from protocols.transform.request import RequestTransform
from protocols.transform.response import KEYS as RESPONSE_KEYS
from protocols.transform.response import ResponseTransform

__all__ = ["REQUEST_KEYS", "RESPONSE_KEYS", "RequestTransform", "ResponseTransform"]
