"""The admin's "try it" panel: what a sample request and response become under a route's transformations.

Computed by the data plane's own code, in the proxy's order: the request's fields are filtered as
protocols.http.headers does for real traffic, then RequestTransform's header rules, the path rules after the
route's `{param}` substitution, the query rules and the JSON body rules; the response gets
ResponseTransform's status mapping (conditions evaluated on the sample), header rules and body rules. The
panel also says whether the route's cache would store the sample answer, and how it would be compressed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from django import forms

from protocols.block_errors import BlockError
from protocols.cache.config import CachePolicy
from protocols.compression.config import CompressionPolicy
from protocols.http.headers import normalize_path, scan_request_headers
from protocols.table import RouteTable
from protocols.transform import RequestTransform, ResponseTransform
from routes.models import Route
from routes.snapshot import route_spec

Headers = list[tuple[bytes, bytes]]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _textarea(rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "cols": 70, "class": "vLargeTextField", "spellcheck": "false"})


class TryForm(forms.Form):
    """A sample exchange, and the two blocks to try (the route's stored ones unless edited here)."""

    request_transformation = forms.CharField(required=False, widget=_textarea(8),
                                             help_text="JSON; empty: no request rules. Not saved.")
    response_transformation = forms.CharField(required=False, widget=_textarea(8),
                                              help_text="JSON; empty: no response rules. Not saved.")
    method = forms.ChoiceField(choices=[(m, m) for m in METHODS], initial="GET")
    path = forms.CharField(max_length=2048, initial="/", help_text="The path the client asks for.")
    query = forms.CharField(max_length=2048, required=False, help_text="Without '?', like a=1&b=2.")
    request_headers = forms.CharField(required=False, widget=_textarea(4), help_text="One 'Name: value' a line.")
    request_body = forms.CharField(required=False, widget=_textarea(4), strip=False)
    status = forms.IntegerField(min_value=100, max_value=599, initial=200, help_text="The backend's status.")
    response_headers = forms.CharField(required=False, widget=_textarea(4), initial="Content-Type: application/json",
                                       help_text="The backend's fields, one 'Name: value' a line.")
    response_body = forms.CharField(required=False, widget=_textarea(4), strip=False, initial="{}")

    def clean_request_headers(self) -> Headers:
        return _parse_headers(self.cleaned_data["request_headers"])

    def clean_response_headers(self) -> Headers:
        return _parse_headers(self.cleaned_data["response_headers"])

    def clean_request_transformation(self) -> Any:
        return _parse_json(self.cleaned_data["request_transformation"])

    def clean_response_transformation(self) -> Any:
        return _parse_json(self.cleaned_data["response_transformation"])

    def clean_path(self) -> str:
        path = self.cleaned_data["path"]
        if not path.startswith("/"):
            raise forms.ValidationError("The path starts with '/'.")
        return path


def _parse_headers(text: str) -> Headers:
    fields: Headers = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise forms.ValidationError(f"Line {number} is not 'Name: value'.")
        try:
            fields.append((name.strip().lower().encode("ascii"), value.strip().encode("latin-1")))
        except UnicodeEncodeError:
            raise forms.ValidationError(f"Line {number} has characters a header cannot carry.") from None
    return fields


def _parse_json(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc}.") from None


def initial_for(route: Route) -> dict[str, Any]:
    """The form's first values: the route's stored blocks and a sample request on its path."""
    sample_path = route.external_path.replace("{", "").replace("}", "") or "/"
    return {
        "request_transformation": json.dumps(route.request_transformation, indent=2)
        if route.request_transformation is not None else "",
        "response_transformation": json.dumps(route.response_transformation, indent=2)
        if route.response_transformation is not None else "",
        "method": (route.methods or ["GET"])[0],
        "path": sample_path,
    }


@dataclass
class Side:
    """One side of the exchange as it leaves the gateway."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    line: str = ""  # "GET /v2/items?a=1" or "200"


@dataclass
class TryResult:
    request: Side
    response: Side
    notes: list[str]
    errors: dict[str, list[str]]


def _show(fields: Headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in fields]


def run(route: Route, data: dict[str, Any]) -> TryResult:
    """What the sample in a valid TryForm's `cleaned_data` becomes on `route`."""
    notes: list[str] = []
    errors: dict[str, list[str]] = {}
    request = response = None
    try:
        request = RequestTransform.from_config(data["request_transformation"])
    except BlockError as exc:
        errors.update(exc.prefixed("request_transformation"))
    try:
        response = ResponseTransform.from_config(data["response_transformation"])
    except BlockError as exc:
        errors.update(exc.prefixed("response_transformation"))
    if request is None or response is None:
        return TryResult(Side(), Side(), notes, errors)

    method = data["method"]
    path = normalize_path(data["path"])
    spec = route_spec(route)
    host = spec.match_host[2:] if spec.match_host.startswith("*.") else spec.match_host
    table = RouteTable([spec])
    match = table.match(method, ("x." + host) if spec.match_host.startswith("*.") else host, path)
    if match.route is not None:
        upstream_path = match.route.upstream_path(match.params, path)
    else:
        upstream_path = path
        notes.append(f"{method} {path} does not match this route ({route.external_path}, "
                     f"{', '.join(route.methods)}); the rules were applied to the path as given.")
    head = scan_request_headers(data["request_headers"])
    forward = request.apply_headers(head.forward)
    target = request.apply_path(upstream_path)
    query = request.apply_query(data["query"].encode("latin-1", "replace")).decode("latin-1")
    body = data["request_body"].encode()
    length = len(body) if body else None
    if body and request.wants_body:
        if request.body_applies(forward, length):
            body = request.apply_json(body)
        else:
            notes.append("The request body was not edited: it is not JSON by its Content-Type, is content-encoded, "
                         f"or is over {request.max_body_bytes} bytes.")
    request_side = Side(_show(forward), body.decode("utf-8", "replace"),
                        f"{method} {target}" + (f"?{query}" if query else ""))

    upstream_headers: Headers = data["response_headers"]
    status = response.map_status(data["status"], method, path, upstream_headers)
    out_headers = response.apply_headers(upstream_headers)
    response_body = data["response_body"].encode()
    if response_body and response.wants_body:
        if response.body_applies(out_headers) and method != "HEAD":
            response_body = response.apply_json(response_body)
        else:
            notes.append("The response body was not edited: it is not JSON by its Content-Type, is "
                         f"content-encoded, or is over {response.max_body_bytes} bytes.")
    notes += _cache_and_compression(route, method, data["status"], upstream_headers, out_headers,
                                    data["request_headers"], status)
    response_side = Side(_show(out_headers), response_body.decode("utf-8", "replace"), str(status))
    return TryResult(request_side, response_side, notes, errors)


def _cache_and_compression(route: Route, method: str, upstream_status: int, upstream_headers: Headers,
                           out_headers: Headers, request_headers: Headers, status: int) -> list[str]:
    notes = []
    try:
        policy = CachePolicy.from_config(route.cache)
        compression = CompressionPolicy.from_config(route.compression)
    except BlockError:
        return ["The route's stored cache or compression block is invalid; save the route to see why."]
    if policy is not None:
        if method not in policy.methods:
            notes.append(f"Cache: {method} is not cached on this route.")
        else:
            authorized = any(name == b"authorization" for name, _ in request_headers)
            freshness = policy.freshness(upstream_status, upstream_headers, time.time(), authorized)
            if freshness is None or method == "HEAD":
                notes.append("Cache: this answer would not be stored (status, Cache-Control, Set-Cookie, "
                             "Authorization or Vary: * say no).")
            else:
                notes.append(f"Cache: stored, fresh for {freshness.fresh_s:g} s, then usable for a failing "
                             f"upstream for {freshness.stale_s:g} s.")
    if compression is not None:
        accept = b", ".join(value for name, value in request_headers if name == b"accept-encoding") or None
        encoder, _ = compression.start(method, status, list(out_headers), accept)
        notes.append(f"Compression: {encoder.coding.decode()}." if encoder is not None else
                     "Compression: none for this answer (type, size, encoding, method or Accept-Encoding).")
    return notes
