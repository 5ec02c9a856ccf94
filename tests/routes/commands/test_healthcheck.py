"""`manage.py healthcheck`: the health checks without a broker, once or in a loop."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from routes.health.models import HealthProbe
from tests.support.upstream import UpstreamServer, refused_port

pytestmark = pytest.mark.django_db


def test_once_probes_what_is_due_and_prints_the_changes(checked_route):
    port = refused_port()
    checked_route(port, unhealthy_threshold=1)
    out = StringIO()
    call_command("healthcheck", "--once", stdout=out)
    assert out.getvalue().splitlines() == [
        f"backend http://127.0.0.1:{port} of route checked: unknown -> unhealthy (refused)",
        "probed 1 backend(s), 1 state change(s)",
    ]
    assert HealthProbe.objects.count() == 1


def test_running_it_twice_at_once_does_not_probe_twice(checked_route):
    with UpstreamServer() as upstream:
        checked_route(upstream.port)
        call_command("healthcheck", "--once", stdout=StringIO())
        out = StringIO()
        call_command("healthcheck", "--once", stdout=out)
    assert out.getvalue().strip() == "probed 0 backend(s), 0 state change(s)"
    assert HealthProbe.objects.count() == 1
