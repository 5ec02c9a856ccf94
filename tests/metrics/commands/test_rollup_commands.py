"""`manage.py rollup` and `manage.py retention`: the Celery work without a broker."""
from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from metrics.models import RawPoint, RetentionPolicy, RollupPoint

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def test_rollup_fills_every_resolution_and_says_how_far():
    RawPoint.objects.create(start=T0, route="users", backend="b:1", source="p1", count=7)
    out = StringIO()
    call_command("rollup", "--now", "2026-11-28T00:00:00Z", stdout=out)
    assert "1m: " in out.getvalue() and "filled until 2026-11-27T23:59:00+00:00" in out.getvalue()
    for resolution in ("1m", "5m", "1h", "1d"):
        assert RollupPoint.objects.get(resolution=resolution).count == 7


def test_retention_deletes_what_the_policy_lets_go():
    RetentionPolicy.objects.filter(resolution="1m").update(keep_days=1)
    RawPoint.objects.create(start=T0, route="users", backend="b:1", source="p1", count=7)
    call_command("rollup", "--now", "2026-11-30T00:00:00Z", stdout=StringIO())
    out = StringIO()
    call_command("retention", "--now", "2026-11-30T00:00:00Z", stdout=out)
    assert "10s: 1 point(s) deleted" in out.getvalue()
    assert "1m: 1 point(s) deleted" in out.getvalue()
    assert RollupPoint.objects.get(resolution="1d").count == 7
