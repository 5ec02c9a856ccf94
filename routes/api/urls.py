"""URLs of the management API (mounted under /api/)."""
from __future__ import annotations

urlpatterns: list = []
