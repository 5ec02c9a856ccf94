"""`manage.py ensureadmin`: a superuser from the environment, created once, never overwritten."""
from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db
VARIABLES = ("DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL",
             "DJANGO_SUPERUSER_PASSWORD_FILE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def ensureadmin() -> str:
    out = StringIO()
    call_command("ensureadmin", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_it_creates_the_superuser_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-7")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")
    assert "Superuser 'root' created" in ensureadmin()
    user = get_user_model().objects.get(username="root")
    assert (user.is_superuser, user.is_staff, user.email) == (True, True, "root@example.com")
    assert user.check_password("a-long-admin-password-7")


def test_a_second_run_changes_nothing(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-7")
    ensureadmin()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "another-password-8")
    assert "already exists" in ensureadmin()
    assert get_user_model().objects.get(username="root").check_password("a-long-admin-password-7")


def test_the_password_can_come_from_a_file(monkeypatch, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("a-long-admin-password-7\n")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD_FILE", str(secret))
    ensureadmin()
    assert get_user_model().objects.get(username="root").check_password("a-long-admin-password-7")


def test_without_the_variables_it_says_so_and_creates_nobody():
    assert "not set" in ensureadmin()
    assert not get_user_model().objects.exists()


def test_a_username_without_a_password_is_an_error(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensureadmin", stdout=StringIO())
    assert not get_user_model().objects.exists()


def test_first_run_creates_an_admin_whose_password_logs_in(settings, tmp_path):
    settings.INSTANCE_DIR = tmp_path
    out = StringIO()
    call_command("ensureadmin", "--first-run", stdout=out, stderr=StringIO())
    password = (tmp_path / "admin-password").read_text().strip()
    assert password in out.getvalue()
    assert "http://127.0.0.1:8001/admin/" in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert (tmp_path / "admin-password").stat().st_mode & 0o077 == 0


def test_first_run_keeps_the_password_apart_for_each_database(settings, tmp_path):
    settings.INSTANCE_DIR = tmp_path / "instances" / "one"
    call_command("ensureadmin", "--first-run", stdout=StringIO(), stderr=StringIO())
    assert (tmp_path / "instances" / "one" / "admin-password").exists()
    assert not (tmp_path / "admin-password").exists()


def test_first_run_leaves_an_existing_superuser_alone(settings, tmp_path):
    settings.INSTANCE_DIR = tmp_path
    get_user_model().objects.create_superuser(username="ops", password="x-long-password-1")
    out = StringIO()
    call_command("ensureadmin", "--first-run", stdout=out, stderr=StringIO())
    assert not (tmp_path / "admin-password").exists()
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["ops"]
