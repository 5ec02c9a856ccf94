"""Consumers applied by `manage.py config`, end to end: a real `runproxy` reloads its consumer directory from the
database and takes the keys the document gave, in front of a real backend on loopback."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from routes.models import ConfigState
from tests.routes.commands.test_config_command import run
from tests.support.gateway import Gateway, http, serving_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

FIRST_KEY = "rk_" + "Fr5tK3y-" * 4
SECOND_KEY = "rk_" + "S3c0ndK_" * 4
DOCUMENT = """\
routes:
  keyed:
    external_path: /keyed
    methods: [GET]
    auth: key
    backends: [{{host: "http://127.0.0.1", port: {port}}}]
consumers:
  billing:
    api_keys: [{keys}]
"""


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


def apply(tmp_path, port: int, *references: str) -> None:
    path = tmp_path / "rusta.yaml"
    keys = ", ".join(f'{{key: "${{env:{name}}}"}}' for name in references)
    path.write_text(DOCUMENT.format(port=port, keys=keys))
    code, out, err = run("apply", str(path))
    assert code == 0, err
    assert FIRST_KEY not in out and SECOND_KEY not in out


def status_with(gateway: Gateway, key: str) -> tuple[int, dict]:
    status, _, body = http("GET", gateway.url + "/keyed", headers={"X-API-Key": key})
    return status, json.loads(body) if status != 200 else {}


@pytest.fixture(autouse=True)
def keys_in_environment(monkeypatch) -> None:
    monkeypatch.setenv("TEST_FIRST_KEY", FIRST_KEY)
    monkeypatch.setenv("TEST_SECOND_KEY", SECOND_KEY)


def served(gateway: Gateway) -> None:
    gateway.wait_version(ConfigState.objects.get(pk=1).version)


def test_a_key_given_by_reference_is_accepted_and_one_taken_out_is_refused(tmp_path, upstream):
    apply(tmp_path, upstream.port, "TEST_FIRST_KEY")
    with serving_gateway(tmp_path) as gateway:
        served(gateway)
        assert status_with(gateway, FIRST_KEY)[0] == 200
        assert [seen.header("x-consumer-name") for seen in upstream.requests] == [["billing"]]

        apply(tmp_path, upstream.port, "TEST_SECOND_KEY")  # the gateway reloads: no restart
        served(gateway)
        status, body = status_with(gateway, FIRST_KEY)
        assert (status, body["type"]) == (401, "invalid_api_key")
        assert status_with(gateway, SECOND_KEY)[0] == 200


def test_keys_listed_together_both_work_while_a_client_moves_over(tmp_path, upstream):
    apply(tmp_path, upstream.port, "TEST_FIRST_KEY", "TEST_SECOND_KEY")
    with serving_gateway(tmp_path) as gateway:
        served(gateway)
        assert [status_with(gateway, key)[0] for key in (FIRST_KEY, SECOND_KEY)] == [200, 200]
