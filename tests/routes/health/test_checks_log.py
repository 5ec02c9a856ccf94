"""The health checks' log lines name a backend as an operator knows it: its URL and its route, never its id."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from routes.health.checks import probe_due_backends
from tests.support.upstream import refused_port

pytestmark = pytest.mark.django_db


def test_a_state_change_is_logged_with_the_backends_url_and_route(checked_route, caplog):
    port = refused_port()
    backend = checked_route(port, unhealthy_threshold=1, name="billing").backends.get()
    with caplog.at_level(logging.WARNING, logger="routes.health.checks"):
        probe_due_backends(now=datetime(2026, 1, 1, tzinfo=UTC))
    lines = [record.getMessage() for record in caplog.records if record.name == "routes.health.checks"]
    assert lines == [f"backend http://127.0.0.1:{port} of route billing is now unhealthy: refused"]
    assert f"backend {backend.pk} " not in lines[0]
