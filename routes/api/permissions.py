"""Who may use the management API: active staff users, reading with the viewer role, writing with the operator
role (routes.roles), and superusers for secrets."""
from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from routes.roles import READ, WRITE


def _staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


class RolePermission(BasePermission):
    """Reads (GET, HEAD, OPTIONS) need the viewer role, every other method the operator role.

    A view may name other model permissions in `read_permission` / `write_permission` (default
    "routes.view_route" / "routes.change_route"). Set on every view explicitly, so that loosening
    DEFAULT_PERMISSION_CLASSES for some other app can never open the gateway's configuration.
    """

    message = "The management API is for staff users only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user: Any = request.user
        if not _staff(user):
            return False
        if request.method in SAFE_METHODS:
            needed = getattr(view, "read_permission", READ)
            self.message = "Reading the configuration needs the viewer role."
        else:
            needed = getattr(view, "write_permission", WRITE)
            self.message = "Changing the configuration needs the operator role."
        return bool(user.has_perm(needed))


# The name the views used before roles existed; it now means the same as RolePermission.
IsStaffPermission = RolePermission


class IsSuperuser(BasePermission):
    """Active staff superusers only (secrets, users)."""

    message = "Only superusers may do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user: Any = request.user
        return _staff(user) and bool(user.is_superuser)
