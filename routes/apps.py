"""Django app configuration of the control plane."""
from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RoutesConfig(AppConfig):
    name = "routes"
    verbose_name = "Gateway configuration"

    def ready(self) -> None:
        from routes.roles import on_post_migrate

        # Keeps the role groups' permissions in step with the models, also after a test database flush.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="rusta-role-groups")
