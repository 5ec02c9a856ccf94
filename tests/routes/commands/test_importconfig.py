"""`manage.py importconfig`: the earlier gateway's files load; a bad file changes nothing and exits non-zero."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from routes import import_export, services
from routes.models import AuditEntry, Route
from tests.support.compat import fixture, kairos_examples, load

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    """The exit code `manage.py importconfig` would have (a CommandError's returncode), stdout and stderr."""
    out, err = StringIO(), StringIO()
    try:
        call_command("importconfig", *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def snapshot() -> tuple:
    return import_export.export_config(include_secrets=True), services.config_version().version


def the_state() -> tuple:
    """The configuration with its secrets and version, and the audit trail: everything an import may write."""
    return *snapshot(), list(AuditEntry.objects.values_list("id", flat=True))


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("path", kairos_examples())
def test_each_example_of_the_earlier_gateway_imports(path):
    code, out, _ = run(str(path))
    assert code == 0
    routers = load(path)["routers"]
    assert Route.objects.count() == len(routers)
    assert f"routes: {len(routers)} created (" in out and ", 0 updated, 0 unchanged, 0 deleted" in out


def test_the_examples_keep_dns_ip_hosts_websocket_and_ai_blocks():
    for name in ("multi_protocol.json", "ai_routing.json"):
        assert run(str(fixture(name)))[0] == 0
    dns = Route.objects.get(protocol="dns")
    assert [b.url for b in dns.backends.all()] == ["dns://192.0.2.53:53", "dns://198.51.100.53:5353"]
    assert Route.objects.get(protocol="websocket").backends.get().url == "ws://notify.internal:8300"
    assert Route.objects.get(name="assist-route").ai_policy["provider"] == "openai"
    assert services.gateway_settings().ai == {"provider": "openai", "model": "fixture-model"}


def test_it_prints_the_routes_it_created_updated_and_deleted(tmp_path, route_doc):
    services.save_route(route_doc(name="old", external_path="/old"), actor=None, source="api")
    services.save_route(route_doc(), actor=None, source="api")
    code, out, _ = run(str(write(tmp_path, {"routers": [route_doc(read_timeout_ms=9),
                                                        route_doc(name="new", external_path="/new")]})), "--replace")
    assert code == 0
    assert "routes: 1 created (new), 1 updated (users), 0 unchanged, 1 deleted (old)" in out


def test_unknown_keys_are_reported_by_path(tmp_path, route_doc):
    routers = [route_doc(name=f"r{i}", external_path=f"/r{i}") for i in range(3)]
    routers[2]["ai_policy"] = {"enabled": True, "strategy": "content_analysis", "foo": 1}
    code, _, err = run(str(write(tmp_path, {"routers": routers, "server": {"port": 80}})))
    assert code == 0
    assert "routers[2].ai_policy.foo" in err and "server" in err


def test_a_bad_file_prints_every_error_by_path_and_changes_nothing(tmp_path, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    before = snapshot()
    bad = {"routers": [route_doc(name="fine", external_path="/fine"),
                       route_doc(name="bad", external_path="nope", backends=[{"host": "http://x", "port": 0}])]}
    code, _, err = run(str(write(tmp_path, bad)), "--replace")
    assert code == 1
    assert "routers[1].external_path:" in err and "routers[1].backends[0].port:" in err
    assert snapshot() == before


def test_a_file_that_is_not_json_is_named(tmp_path):
    code, _, err = run(str(write(tmp_path, "routers:\n  - /x\n", name="config.yaml")))
    assert code == 1
    assert "config.yaml is not valid JSON: Expecting value at line 1, column 1" in err
    assert not Route.objects.exists()


def test_nan_is_refused_as_json_does(tmp_path):
    code, _, err = run(str(write(tmp_path, '{"routers": [], "rate_limit": {"burst": NaN}}')))
    assert code == 1
    assert "NaN is not a JSON number" in err


def test_a_file_that_is_not_json_exits_1_without_a_traceback_from_manage_py(tmp_path):
    path = write(tmp_path, "<html>not a config</html>", name="page.html")
    # The embedded database in a scratch folder: the file is refused before any database is touched anyway.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["RUSTA_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run([sys.executable, "manage.py", "importconfig", str(path)], cwd=settings.BASE_DIR,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "page.html is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_file_exits_non_zero(tmp_path):
    code, _, err = run(str(tmp_path / "absent.json"))
    assert code == 1
    assert "Cannot read" in err


def test_a_dash_reads_standard_input(monkeypatch, route_doc):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"routers": [route_doc()]})))
    call_command("importconfig", "-", stdout=StringIO())
    assert Route.objects.get().name == "users"


def test_errors_in_the_resilience_blocks_are_printed_by_path(tmp_path, route_doc):
    bad = {"routers": [route_doc(health_check={"unhealthy_threshold": 0}, circuit_breaker={"open_s": 0},
                                 retry={"budget_ratio": 2}, health_checks={"typo": 1})]}
    code, _, err = run(str(write(tmp_path, bad)))
    assert code == 1
    for path in ("routers[0].health_check.unhealthy_threshold:", "routers[0].circuit_breaker.open_s:",
                 "routers[0].retry.budget_ratio:"):
        assert path in err
    assert not Route.objects.exists()


def test_unknown_keys_inside_the_resilience_blocks_are_reported_by_path(tmp_path, route_doc):
    data = {"routers": [route_doc(health_check={"intervall_s": 5}, circuit_breaker={"open_for": 3})]}
    code, _, err = run(str(write(tmp_path, data)))
    assert code == 0
    assert "routers[0].health_check.intervall_s" in err and "routers[0].circuit_breaker.open_for" in err


MISSPELLED = {"retry": {"max_retries": 2, "max_retires": 5}, "health_check": {"interval": 3},
              "circuit_breaker": {"treshold": 3}}
MISSPELLED_PATHS = ("routers[0].retry.max_retires", "routers[0].health_check.interval",
                    "routers[0].circuit_breaker.treshold")


def test_without_strict_misspelled_resilience_keys_are_warned_and_left_out(tmp_path, route_doc):
    code, out, err = run(str(write(tmp_path, {"routers": [route_doc(**MISSPELLED)]})))
    assert code == 0
    for path in MISSPELLED_PATHS:
        assert f"unknown key, not used by Rusta: {path}" in err
    route = Route.objects.get()
    assert (route.retry, route.health_check, route.circuit_breaker) == ({"max_retries": 2}, {}, {})


def test_with_strict_a_misspelled_resilience_key_exits_non_zero_and_changes_nothing(tmp_path, route_doc):
    services.save_route(route_doc(name="kept", external_path="/kept"), actor=None, source="api")
    before = snapshot()
    code, _, err = run(str(write(tmp_path, {"routers": [route_doc(**MISSPELLED)]})), "--strict", "--replace")
    assert code == 1
    for path in MISSPELLED_PATHS:
        assert f"{path}: Unknown key; " in err
    assert snapshot() == before


def test_with_strict_any_unknown_key_is_an_error(tmp_path, route_doc):
    data = {"server": {"port": 80}, "ai": {"provider": "openai", "modle": "x"},
            "routers": [route_doc(ai_policy={"enabled": True, "strategy": "content_analysis", "foo": 1})]}
    code, _, err = run(str(write(tmp_path, data)), "--strict")
    assert code == 1
    assert "server: Unknown key; Rusta does not use it." in err
    assert ("ai.modle: Unknown key; ai knows api_key, base_url, max_concurrency, model, provider, timeout_ms. "
            "Did you mean 'model'?") in err
    assert "routers[0].ai_policy.foo: Unknown key; ai_policy knows " in err
    assert not Route.objects.exists()


@pytest.mark.parametrize("path", kairos_examples())
def test_each_example_of_the_earlier_gateway_imports_with_strict_and_no_warning(path):
    code, _, err = run(str(path), "--strict")
    assert (code, err) == (0, "")


def test_access_blocks_that_do_not_compile_are_printed_by_path(tmp_path, route_doc):
    bad = {"rate_limit": {"limit": 10, "scope": "per_planet"},
           "routers": [route_doc(jwt={"secret": "too-short"}, rate_limit={"limit": 5, "window_type": "x"})]}
    code, _, err = run(str(write(tmp_path, bad)))
    assert code == 1
    for path in ("rate_limit.scope:", "routers[0].jwt.secret:", "routers[0].rate_limit.window_type:"):
        assert path in err
    assert "too-short" not in err
    assert not Route.objects.exists()


def test_a_gateway_wide_per_user_and_route_rate_limit_imports(tmp_path, route_doc):
    block = {"strategy": "PerUserAndRoute", "requests_per_window": 100, "window_duration": 60}
    code, out, err = run(str(write(tmp_path, {"rate_limit": block, "routers": [route_doc()]})))
    assert (code, err) == (0, "")
    assert "settings: rate_limit added" in out and "routes: 1 created (users)" in out
    assert services.gateway_settings().rate_limit == block


JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"


def test_a_jwt_block_added_to_a_gateway_with_routes_is_printed_by_name(tmp_path, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    code, out, _ = run(str(write(tmp_path, {"jwt": {"secret": JWT_SECRET}, "routers": [route_doc()]})))
    assert code == 0
    assert "settings: jwt added\n" in out
    assert "routes: 0 created, 0 updated, 1 unchanged, 0 deleted" in out
    assert JWT_SECRET not in out


def test_importing_the_same_file_again_prints_that_nothing_changed(tmp_path, route_doc):
    path = str(write(tmp_path, {"jwt": {"secret": JWT_SECRET}, "rate_limit": {"limit": 10, "window_s": 60},
                                "routers": [route_doc()]}))
    run(path)
    code, out, _ = run(path)
    assert code == 0
    assert "settings: unchanged\nroutes: 0 created, 0 updated, 1 unchanged, 0 deleted" in out


def test_a_changed_settings_block_and_an_updated_route_are_printed(tmp_path, route_doc):
    import_export.import_config({"rate_limit": {"limit": 10, "window_s": 60}, "routers": [route_doc()]},
                           actor=None, source="import")
    data = {"rate_limit": {"limit": 20, "window_s": 60}, "routers": [route_doc(read_timeout_ms=9)]}
    code, out, _ = run(str(write(tmp_path, data)))
    assert code == 0
    assert "settings: rate_limit changed\nroutes: 0 created, 1 updated (users), 0 unchanged, 0 deleted" in out


def test_a_dry_run_prints_what_a_real_run_does_and_changes_nothing(tmp_path, route_doc):
    services.save_route(route_doc(name="old", external_path="/old"), actor=None, source="api")
    services.save_route(route_doc(), actor=None, source="api")
    routers = [route_doc(read_timeout_ms=9), route_doc(name="new", external_path="/new")]
    path = str(write(tmp_path, {"jwt": {"secret": JWT_SECRET}, "routers": routers}))
    before = the_state()
    code, dry, _ = run(path, "--replace", "--dry-run")
    assert code == 0
    assert the_state() == before
    assert f"Dry run: nothing was changed; configuration version stays {before[1]}." in dry
    _, real, _ = run(path, "--replace")
    assert dry.splitlines()[:2] == real.splitlines()[:2] == [
        "settings: jwt added", "routes: 1 created (new), 1 updated (users), 0 unchanged, 1 deleted (old)"]


def test_an_earlier_gateway_file_that_switches_on_jwt_and_a_rate_limit_says_so(tmp_path):
    # The issue: a file that sets the gateway-wide jwt and rate_limit blocks printed "0 created, 0 updated".
    data = load(fixture("advanced.json"))
    import_export.import_config({**data, "jwt": None, "rate_limit": None}, actor=None, source="import")
    code, out, _ = run(str(fixture("advanced.json")))
    assert code == 0
    unchanged = len(data["routers"])
    assert f"settings: jwt added, rate_limit added\nroutes: 0 created, 0 updated, {unchanged} unchanged" in out
    assert data["jwt"]["secret"] not in out
