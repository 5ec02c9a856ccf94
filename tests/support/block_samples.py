"""What each route block needs besides its defaults to be valid, and the protocol and backend its route needs:
shared by the block-keys tests and the API tour."""
from __future__ import annotations

from typing import Any

JWT_SECRET = "a-route-jwt-secret-of-at-least-32-bytes"
VALID: dict[str, dict[str, Any]] = {
    "rate_limit": {"limit": 5, "window_s": 60}, "cors": {"origins": ["https://app.example.com"]},
    "jwt": {"secret": JWT_SECRET}, "ai_policy": {"strategy": "content_analysis"}, "plugins": {"name": "example"},
    "llm": {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]},
}
PROTOCOL = {"ftp": ("ftp", "ftp://files.internal"), "websocket": ("websocket", "ws://chat.internal"),
            "llm": ("llm", None)}
