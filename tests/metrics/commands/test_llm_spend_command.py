"""`manage.py llm_spend`: the persist task's work without a broker, refused clearly where it has nothing to do."""
from __future__ import annotations

import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(REDIS_URL="")
def test_without_redis_it_says_each_gateway_writes_its_own() -> None:
    with pytest.raises(CommandError, match="each gateway process writes its own"):
        call_command("llm_spend")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")
def test_with_redis_it_reports_what_it_copied() -> None:
    out = StringIO()
    call_command("llm_spend", stdout=out)
    assert "counter(s) read from Redis" in out.getvalue()
