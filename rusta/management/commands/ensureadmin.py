"""`manage.py ensureadmin`: create the superuser named by DJANGO_SUPERUSER_USERNAME once, for unattended setups."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from rusta.env import envint, envstr


class Command(BaseCommand):
    help = ("Create a superuser from DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (or "
            "DJANGO_SUPERUSER_PASSWORD_FILE), and DJANGO_SUPERUSER_EMAIL, unless that user exists. Safe to run "
            "at every start.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--first-run", action="store_true",
            help="With the variables unset and no superuser at all, create 'admin' with a generated password, "
                 "kept in the var/ folder, and print how to log in (what `make run` does).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = envstr("DJANGO_SUPERUSER_USERNAME").strip()
        password = envstr("DJANGO_SUPERUSER_PASSWORD")
        email = envstr("DJANGO_SUPERUSER_EMAIL").strip()
        if not username and not password:
            if options["first_run"]:
                self._first_run()
                return
            self.stdout.write("DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD are not set; no user created.")
            return
        if not username or not password:
            missing = "DJANGO_SUPERUSER_PASSWORD" if username else "DJANGO_SUPERUSER_USERNAME"
            raise CommandError(f"{missing} is not set; set both, or neither to skip.")
        user_model = get_user_model()
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            # Idempotent on purpose: a restart must not reset a password changed in the admin since.
            self.stdout.write(f"User '{username}' already exists; nothing changed.")
            return
        try:
            validate_password(password, user_model(**{user_model.USERNAME_FIELD: username}))
        except ValidationError as exc:
            self.stderr.write(self.style.WARNING(f"Weak password for '{username}': {' '.join(exc.messages)}"))
        user_model._default_manager.create_superuser(username=username, email=email, password=password)
        self.stdout.write(self.style.SUCCESS(f"Superuser '{username}' created."))

    def _first_run(self) -> None:
        """A newcomer's first `make run`: one admin account whose password they can read back from var/.

        The file is kept in the instance folder: the account belongs to one database, and gateways started from
        one checkout with different databases must not overwrite each other's password file.
        """
        user_model = get_user_model()
        password_file = Path(settings.INSTANCE_DIR) / "admin-password"
        admin_url = f"http://127.0.0.1:{envint('RUSTA_ADMIN_PORT', 8001)}/admin/"
        if user_model._default_manager.filter(is_superuser=True).exists():
            if password_file.exists():
                self.stdout.write(f"Admin: log in at {admin_url} as 'admin' with the password in {password_file}")
            else:
                self.stdout.write(f"Admin: log in at {admin_url} with your superuser account.")
            return
        password = secrets.token_urlsafe(12)
        user_model._default_manager.create_superuser(username="admin", email="", password=password)
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(
            f"Created superuser 'admin' with password {password} (kept in {password_file}).\n"
            f"Log in at {admin_url}"
        ))
