"""Verdicts and client windows for the abuse tests, made directly (the detection's own output is tested apart)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from metrics.models import Verdict


def make_verdict(**fields: Any) -> Verdict:
    now = timezone.now()
    values: dict[str, Any] = {
        "route": "shop", "client": "ip:10.0.0.9", "kind": "credential_stuffing", "score": 14.2,
        "model_version": "iforest-sklearn1.9.1-shop-20261207T040000-n900", "action": "block",
        "window_start": now - timedelta(seconds=20), "window_end": now - timedelta(seconds=10),
        "expires_at": now + timedelta(seconds=600),
        "features": [{"name": "auth_failures", "value": 42.0, "baseline": None, "population": 0.0, "score": 14.2},
                     {"name": "requests", "value": 44.0, "baseline": None, "population": 3.0, "score": 3.1}],
    }
    values.update(fields)
    return Verdict.objects.create(**values)
