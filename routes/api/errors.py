"""Turns configuration errors raised by the service layer into 400 answers with field-level messages."""
from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from routes.services import ConfigError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ConfigError):
        return Response({"errors": exc.errors}, status=400)
    return drf_exception_handler(exc, context)
