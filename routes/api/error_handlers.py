"""The management API's one error shape: `{"errors": {"path": ["message"]}}` for every error status.

Field errors carry their path (`backends[0].port`); an error about the request as a whole (a body that is not
JSON, no credentials, a missing role, an unknown id, a method or media type the endpoint does not take) is under
the empty path `""`. The status and DRF's headers (`WWW-Authenticate`, `Allow`, `Retry-After`) are kept.
A URL under /api/ that no endpoint has answers the same shape (`not_found`, the admin listener's 404 handler),
never Django's HTML page.
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from routes.services import ConfigError


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `path: [messages]`, the same shape routes.validation answers."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            for sub, messages in flatten_errors(value, path).items():
                out.setdefault(sub, []).extend(messages)
        return out
    if isinstance(detail, list) and detail and all(not isinstance(item, (dict, list)) for item in detail):
        return {prefix: [str(item) for item in detail]}
    if isinstance(detail, list):
        out = {}
        for index, value in enumerate(detail):
            for sub, messages in flatten_errors(value, f"{prefix}[{index}]").items():
                out.setdefault(sub, []).extend(messages)
        return out
    return {prefix: [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ConfigError):
        return Response({"errors": exc.errors}, status=400)
    if isinstance(exc, ValidationError):
        # One error shape for clients, whether the service layer or DRF itself refused the input.
        return Response({"errors": flatten_errors(exc.detail)}, status=400)
    response = drf_exception_handler(exc, context)
    if response is not None:
        # DRF answers `{"detail": message}` (also for Django's Http404 and PermissionDenied, which it converts).
        data = response.data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        response.data = {"errors": flatten_errors(detail)}
    return response


API_PREFIX = "/api/"


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The admin listener's 404: `{"errors": {"": ["No such endpoint: ..."]}}` under /api/, where the clients are
    programs; Django's page elsewhere. A path without its trailing slash is still redirected first (APPEND_SLASH
    runs on this response), as for every endpoint."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"errors": {"": [f"No such endpoint: {request.method} {request.path}."]}}, status=404)
    return page_not_found(request, exception)
