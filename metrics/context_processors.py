"""Template context for the admin: the warning its banner shows while the background work is missing."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from metrics.background import current_report
from protocols.health import background_message


def background(request: HttpRequest) -> dict[str, Callable[[], str]]:
    """`rusta_background_warning`: what to tell a staff user while the background work has not reported
    (templates/admin/base_site.html shows it on every admin page), else "".

    A callable, so that the one query it costs is made only by the pages that show it (templates call it when
    they read the variable); visitors who are not staff (the login page) are told nothing.
    """

    def warning() -> str:
        user = getattr(request, "user", None)
        if user is None or not (user.is_active and user.is_staff):
            return ""
        report = current_report()
        return "" if report.ok else background_message(report)

    return {"rusta_background_warning": warning}
