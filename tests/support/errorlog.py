"""A logging handler that keeps the errors a server under test logs, for tests that assert there were none."""
from __future__ import annotations

import logging


class ErrorLog(logging.Handler):
    """Errors the gateway logs (an unexpected failure, uvicorn's "Exception in ASGI application"...)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")
