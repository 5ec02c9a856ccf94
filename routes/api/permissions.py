"""Who may use the management API: active staff users only, whatever the project-wide default says."""
from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsStaffPermission(BasePermission):
    """Allows authenticated, active staff users.

    Set on every view explicitly so that loosening DEFAULT_PERMISSION_CLASSES for some other app can never
    open the gateway's configuration.
    """

    message = "The management API is for staff users only."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and user.is_staff)
