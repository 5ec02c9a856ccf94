"""The management plane's roles as groups: "Rusta viewers" (read) and "Rusta operators" (change), see routes.roles."""
from __future__ import annotations

from typing import Any

from django.db import migrations


def create_groups(apps: Any, schema_editor: Any) -> None:
    from routes.roles import create_role_permissions, sync_role_groups

    using = schema_editor.connection.alias
    create_role_permissions(apps, using)
    sync_role_groups(apps, using)


def remove_groups(apps: Any, schema_editor: Any) -> None:
    from routes.roles import ROLE_GROUPS

    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(
        name__in=ROLE_GROUPS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("routes", "0004_guards"),
        ("metrics", "0003_default_retention"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
