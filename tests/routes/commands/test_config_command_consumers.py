"""`manage.py config` with a `consumers` section: YAML round trip, keys from the environment, never printed."""
from __future__ import annotations

import pytest
import yaml

from routes.consumers import services as consumer_services
from routes.consumers.models import ApiKey, Consumer
from tests.routes.commands.test_config_command import run

pytestmark = pytest.mark.django_db

KEY = "rk_" + "Kq7-Lm2_" * 4
NEW_KEY = "rk_" + "Np4xQr8z" * 4
CONSUMERS = """\
consumers:
  billing:
    tags: [partner]
    jwt_subjects: [billing-service]
    api_keys:
      - key: "${env:TEST_BILLING_KEY}"
  ops:
    enabled: false
"""


@pytest.fixture
def consumers_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_BILLING_KEY", KEY)
    path = tmp_path / "rusta.yaml"
    path.write_text(CONSUMERS)
    return path


def test_apply_creates_the_consumers_and_prints_keys_by_prefix_only(consumers_file):
    code, out, _ = run("apply", str(consumers_file))
    assert code == 0
    assert "+ consumers.billing\n" in out and f'    api_keys: ["{KEY[:11]}…"]\n' in out
    assert "consumers: 2 created, 0 updated, 0 deleted, 0 unchanged" in out
    assert KEY not in out
    assert ApiKey.objects.get(consumer__name="billing").digest == consumer_services.stored_digest(KEY)


def test_a_new_key_in_place_of_the_old_is_one_line_of_prefixes(consumers_file, monkeypatch):
    run("apply", str(consumers_file))
    monkeypatch.setenv("TEST_BILLING_KEY", NEW_KEY)
    code, out, _ = run("diff", str(consumers_file))
    assert code == 2
    assert out.splitlines()[0] == f'~ consumers.billing.api_keys: ["{KEY[:11]}…"] -> ["{NEW_KEY[:11]}…"]'
    assert KEY not in out and NEW_KEY not in out


def test_diff_with_prune_names_the_consumer_it_would_delete(consumers_file):
    run("apply", str(consumers_file))
    consumers_file.write_text(CONSUMERS.split("  ops:")[0])
    code, out, _ = run("diff", "--prune", str(consumers_file))
    assert code == 2
    assert out.splitlines()[0] == "- consumers.ops"


def test_a_dumped_file_applies_without_a_change_and_keeps_the_keys(consumers_file, tmp_path):
    run("apply", str(consumers_file))
    dumped = tmp_path / "dump.yaml"
    assert run("dump", str(dumped))[0] == 0
    assert yaml.safe_load(dumped.read_text())["consumers"] == {
        "billing": {"enabled": True, "tags": ["partner"], "jwt_subjects": ["billing-service"]},
        "ops": {"enabled": False, "tags": [], "jwt_subjects": []}}
    assert run("diff", "--prune", str(dumped)) == (0, "", "")
    assert [key.revoked_at for key in ApiKey.objects.all()] == [None]


def test_validate_names_a_bad_key_by_path_without_printing_it(consumers_file, monkeypatch):
    monkeypatch.setenv("TEST_BILLING_KEY", "rk_too-short-to-be-a-key")
    code, out, err = run("validate", str(consumers_file))
    assert code == 1
    assert "consumers.billing.api_keys[0].key: An API key is 'rk_' and at least 32" in err
    assert "too-short" not in out + err
    assert not Consumer.objects.exists()
