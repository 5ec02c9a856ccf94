"""The `rusta` app: the process wiring (the commands that run the gateway, its system checks) has an app of its
own, beside the control plane, and adds no models and no migrations."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command, get_commands


def test_manage_py_lists_the_commands_that_run_the_gateway_under_rusta_and_configuration_under_routes():
    commands = get_commands()
    assert {name: commands[name] for name in ("runproxy", "rundns", "ensureadmin", "importconfig", "exportconfig")
            } == {"runproxy": "rusta", "rundns": "rusta", "ensureadmin": "rusta",
                  "importconfig": "routes", "exportconfig": "routes"}


@pytest.mark.django_db
def test_the_rusta_app_has_no_migrations_to_make():
    out = StringIO()
    call_command("makemigrations", "rusta", "--check", "--dry-run", stdout=out)  # SystemExit(1) if it had any
    assert "No changes detected" in out.getvalue()
