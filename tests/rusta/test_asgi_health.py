"""The admin listener's /health and /ready (rusta.asgi.HealthFirst) judge staleness by RUSTA_READY_STALE_AFTER and
RUSTA_BACKGROUND_STALE_AFTER as settings give them when it is built, whatever process serves it."""
from __future__ import annotations

import json
import time

from asgiref.sync import async_to_sync

from protocols.table import live
from rusta.asgi import build_admin_application


def get(app, path: str) -> tuple[int, dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async_to_sync(app)({"type": "http", "method": "GET", "path": path, "headers": []}, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


def watching(monkeypatch, *, database_age: float = 0.0, background_age: float = 0.0) -> None:
    """This process's table, as a watcher that has polled for an hour would leave it."""
    now = time.time()
    monkeypatch.setattr(live, "loaded", True)
    monkeypatch.setattr(live, "watching_since", now - 3600)
    monkeypatch.setattr(live, "source_ok_at", now - database_age)
    monkeypatch.setattr(live, "background_at", now - background_age)


def test_health_is_degraded_after_rusta_background_stale_after(settings, monkeypatch):
    settings.RUSTA_BACKGROUND_STALE_AFTER = 2.0
    watching(monkeypatch, background_age=5)
    status, body = get(build_admin_application(), "/health")
    assert (status, body["status"], body["background"]["ok"]) == (200, "degraded", False)


def test_ready_is_unavailable_after_rusta_ready_stale_after(settings, monkeypatch):
    settings.RUSTA_READY_STALE_AFTER = 2.0
    watching(monkeypatch, database_age=5)
    status, body = get(build_admin_application(), "/ready")
    assert (status, body["checks"]["database"]) == (503, False)
