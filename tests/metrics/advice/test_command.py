"""`manage.py advice`: the findings in words with their evidence and draft, or the API's document as JSON."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.support.advice_series import hourly, route

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_backend():
    route("users", (8080, 8081), read_timeout_ms=1000)
    hourly("users", "10.0.0.5:8080", 24, 300, latency=0.02)
    hourly("users", "10.0.0.5:8081", 24, 300, latency=0.2)


def run(*args: str) -> str:
    out = StringIO()
    call_command("advice", *args, stdout=out)
    return out.getvalue()


def test_it_prints_each_finding_with_its_evidence_and_draft(slow_backend):
    text = run()
    assert "[warning] latency_aware:users:" in text
    assert "route users: backend 10.0.0.5:8081 answers with a p50 of 200.0 ms" in text
    assert '"hours_compared": 24' in text
    assert '+  "load_balancing_strategy": "latency_aware",' in text


def test_json_gives_the_apis_document(slow_backend):
    document = json.loads(run("--json"))
    [finding] = document["findings"]
    assert finding["changes"] == {"load_balancing_strategy": ["round_robin", "latency_aware"]}
    assert document["llm"]["model"] is None


def test_it_says_so_when_there_is_no_advice():
    assert run() == "No advice: the stored traffic raises nothing to change.\n"
