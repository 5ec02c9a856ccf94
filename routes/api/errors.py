"""Turns configuration errors into 400 answers with field-level messages: `{"errors": {"path": [...]}}`."""
from __future__ import annotations

from typing import Any

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
    return drf_exception_handler(exc, context)
