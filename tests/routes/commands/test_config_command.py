"""`manage.py config dump|validate|diff|apply`: YAML or JSON files, exit codes a script can test, secrets unprinted."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from io import StringIO

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from routes import import_export, services
from routes.models import AuditEntry, Route

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"
OTHER_SECRET = "another-secret-of-at-least-32-bytes!"
USERS = """\
settings:
  jwt: {secret: "${env:TEST_JWT_SECRET}", issuer: me}
routes:
  users:
    external_path: /users/{id}
    methods: [GET]
    backends: [{host: "http://10.0.0.5", port: 8080}]
    retry: {max_retries: 1}
"""


def run(*args: str) -> tuple[int, str, str]:
    """The exit code `manage.py config` would have, its standard output and error."""
    out, err = StringIO(), StringIO()
    try:
        call_command("config", *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return exc.returncode, out.getvalue(), err.getvalue()
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def state() -> tuple:
    return (import_export.export_config(include_secrets=True), services.config_version().version,
            list(AuditEntry.objects.values_list("id", flat=True)))


@pytest.fixture
def users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_JWT_SECRET", JWT_SECRET)
    path = tmp_path / "rusta.yaml"
    path.write_text(USERS)
    return path


def test_apply_prints_each_change_and_the_new_version(users_file):
    code, out, _ = run("apply", str(users_file))
    assert code == 0
    assert "+ settings.jwt\n    secret: \"<redacted>\"\n    issuer: \"me\"\n" in out
    assert "+ routes.users\n" in out and '    external_path: "/users/{id}"\n' in out
    assert f"Applied; configuration version {services.config_version().version}." in out
    assert JWT_SECRET not in out
    assert services.gateway_settings().jwt["secret"] == JWT_SECRET


def test_diff_prints_the_changed_values_by_path_and_exits_2(users_file):
    run("apply", str(users_file))
    users_file.write_text(USERS.replace("max_retries: 1", "max_retries: 3").replace("[GET]", "[GET, PUT]"))
    code, out, _ = run("diff", str(users_file))
    assert code == 2
    assert out.splitlines()[:2] == ['~ routes.users.methods: ["GET"] -> ["GET", "PUT"]',
                                    "~ routes.users.retry.max_retries: 1 -> 3"]


def test_after_apply_diff_prints_nothing_and_exits_0(users_file):
    run("apply", str(users_file))
    assert run("diff", str(users_file)) == (0, "", "")


def test_a_changed_secret_is_printed_as_changed_and_never_its_value(users_file, monkeypatch):
    run("apply", str(users_file))
    monkeypatch.setenv("TEST_JWT_SECRET", OTHER_SECRET)
    code, out, _ = run("diff", str(users_file))
    assert code == 2
    assert "~ settings.jwt.secret: secret changed\n" in out
    assert OTHER_SECRET not in out and JWT_SECRET not in out


def test_diff_with_prune_lists_the_routes_it_would_delete(users_file, route_doc):
    services.save_route(route_doc(name="old", external_path="/old"), actor=None, source="test")
    assert "- routes.old" not in run("diff", str(users_file))[1]
    code, out, _ = run("diff", str(users_file), "--prune")
    assert code == 2
    assert "- routes.old\n" in out
    assert Route.objects.filter(name="old").exists()


def test_a_dumped_file_applies_without_a_change(users_file, tmp_path):
    run("apply", str(users_file))
    before = state()
    for name in ("dump.yaml", "dump.json"):
        assert run("dump", str(tmp_path / name))[0] == 0
        assert run("apply", str(tmp_path / name), "--prune") == (
            0, f"Nothing to change; configuration version stays {before[1]}.\n", "")
    assert state() == before


def test_dump_writes_yaml_with_secrets_redacted(users_file, tmp_path):
    users_file.write_text(USERS.replace("${env:TEST_JWT_SECRET}", JWT_SECRET))  # by reference, dump writes that
    run("apply", str(users_file))
    target = tmp_path / "dump.yml"
    _, _, err = run("dump", str(target))
    assert "Wrote 1 route(s), 1 settings block(s), 0 consumer(s) and 0 certificate(s)" in err
    dumped = yaml.safe_load(target.read_text())
    assert dumped["settings"]["jwt"] == {"secret": "<redacted>", "issuer": "me"}
    assert dumped["routes"]["users"]["retry"] == {"max_retries": 1}


def test_dump_with_secrets_writes_them_to_a_file_only_its_owner_reads(users_file, tmp_path):
    run("apply", str(users_file))
    target = tmp_path / "secrets.yaml"
    run("dump", str(target), "--include-secrets")
    assert yaml.safe_load(target.read_text())["settings"]["jwt"]["secret"] == JWT_SECRET
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_dump_without_a_file_writes_json_to_standard_output(users_file):
    run("apply", str(users_file))
    code, out, _ = run("dump")
    assert code == 0
    assert json.loads(out)["routes"]["users"]["methods"] == ["GET"]


def test_a_dash_reads_json_from_standard_input(monkeypatch, route_doc):
    document = {"routes": {"users": {k: v for k, v in route_doc().items() if k != "name"}}}
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(document)))
    assert run("apply", "-")[0] == 0
    assert Route.objects.get().name == "users"


def test_validate_prints_every_error_by_path_exits_1_and_changes_nothing(users_file):
    run("apply", str(users_file))
    before = state()
    users_file.write_text(USERS.replace("port: 8080", "port: 0").replace("max_retries", "max_retires")
                          + "  other:\n    external_path: nope\n")
    code, _, err = run("validate", str(users_file))
    assert code == 1
    for path in ("routes.users.backends[0].port:", "routes.users.retry.max_retires:", "routes.other.external_path:"):
        assert path in err
    assert "error(s); nothing was changed." in err
    assert state() == before


def test_validate_of_a_good_file_says_so(users_file):
    assert run("validate", str(users_file)) == (0, f"{users_file} is valid.\n", "")
    assert not Route.objects.exists()


def test_an_unset_environment_variable_is_an_error_by_path(users_file, monkeypatch):
    monkeypatch.delenv("TEST_JWT_SECRET")
    code, _, err = run("apply", str(users_file))
    assert code == 1
    assert "settings.jwt.secret: The environment variable TEST_JWT_SECRET is not set." in err
    assert not Route.objects.exists()


def test_a_file_reference_is_read_next_to_the_document(users_file, tmp_path):
    (tmp_path / "jwt.secret").write_text(OTHER_SECRET + "\n")
    users_file.write_text(USERS.replace("${env:TEST_JWT_SECRET}", "${file:jwt.secret}"))
    assert run("apply", str(users_file))[0] == 0
    assert services.gateway_settings().jwt["secret"] == OTHER_SECRET


def test_apply_with_dry_run_prints_the_diff_and_changes_nothing(users_file):
    code, out, _ = run("apply", str(users_file), "--dry-run")
    assert code == 0
    assert "+ routes.users\n" in out and "Dry run: nothing was changed; configuration version stays 0." in out
    assert not Route.objects.exists()


def test_a_key_written_twice_in_yaml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("routes:\n  users: {external_path: /a}\n  users: {external_path: /b}\n")
    code, _, err = run("validate", str(path))
    assert code == 1
    assert "line 3: the key 'users' appears twice" in err


def test_a_date_in_yaml_stays_text(users_file):
    users_file.write_text(USERS.replace("backends: [{", "backends: [{description: 2026-12-01, "))
    assert run("apply", str(users_file))[0] == 0
    assert Route.objects.get().backends.get().description == "2026-12-01"


def test_a_file_that_is_neither_yaml_nor_json_by_name_is_refused(tmp_path):
    code, _, err = run("validate", str(tmp_path / "rusta.toml"))
    assert code == 1
    assert "name a .yaml, .yml or .json file" in err


def test_manage_py_exits_2_when_diff_finds_a_change_and_1_on_a_broken_file(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["RUSTA_VAR_DIR"] = str(tmp_path / "var")  # a scratch embedded database

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env,
                              capture_output=True, text=True, timeout=120)

    assert manage("migrate", "-v0").returncode == 0
    document = tmp_path / "rusta.json"
    document.write_text(json.dumps({"routes": {"users": {"external_path": "/users", "methods": ["GET"],
                                                         "backends": [{"host": "http://10.0.0.5", "port": 80}]}}}))
    done = manage("config", "diff", str(document))
    assert (done.returncode, done.stdout.splitlines()[0]) == (2, "+ routes.users")
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [unclosed\n")
    done = manage("config", "diff", str(broken))
    assert done.returncode == 1
    assert "broken.yaml is not valid YAML" in done.stderr and "Traceback" not in done.stderr
