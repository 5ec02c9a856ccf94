"""Django app configuration of the process wiring: the commands that run the gateway and its system checks."""
from __future__ import annotations

from django.apps import AppConfig


class RustaConfig(AppConfig):
    """`manage.py runproxy`, `rundns` and `ensureadmin` (rusta.management.commands) and the rusta.E00x checks.

    It has no models, so no migrations: being an app only lets Django find the commands and run `ready()`."""

    name = "rusta"
    verbose_name = "Gateway process"

    def ready(self) -> None:
        import rusta.checks  # noqa: F401  (registers the environment checks)
