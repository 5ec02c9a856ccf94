"""metrics.certificates: each stored TLS certificate's expiry as a gauge on the admin listener's /metrics."""
from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest
import trustme

from routes.certificates.services import save_certificate
from tests.support.certificates import issued

pytestmark = pytest.mark.django_db
NOT_AFTER = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)


def test_each_certificates_expiry_is_a_gauge_on_metrics(client):
    pair = issued(trustme.CA(), "api.example.com", not_after=NOT_AFTER)
    save_certificate({"name": "api", "certificate": pair.chain, "key": pair.key}, actor=None, source="test")
    text = client.get("/metrics").content.decode()
    assert "# TYPE rusta_certificate_expiry_timestamp_seconds gauge" in text
    assert f'rusta_certificate_expiry_timestamp_seconds{{certificate="api"}} {int(NOT_AFTER.timestamp())}\n' in text
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                                 timeout=30)
        assert "rusta_certificate_expiry" not in checked.stdout + checked.stderr


def test_without_certificates_the_family_is_absent(client):
    assert "rusta_certificate_expiry" not in client.get("/metrics").content.decode()
