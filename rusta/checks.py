"""System checks for configuration read from the environment outside settings.py: a mistake stops
`manage.py runproxy` (and `check`) with one message naming the variable, before any worker starts."""
from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks

from protocols.http.listener import ListenerLimits
from protocols.tracing.config import OtlpConfig, OtlpConfigError


@checks.register(checks.Tags.compatibility)
def check_otel_environment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """rusta.E001: the OTEL_* variables that switch OpenTelemetry export on must be usable."""
    try:
        OtlpConfig.from_env(os.environ)
    except OtlpConfigError as exc:
        return [checks.Error(str(exc), hint="Fix or unset the variable; README.md, Tracing, lists them.",
                             id="rusta.E001")]
    return []


@checks.register(checks.Tags.compatibility)
def check_listener_limits(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """rusta.E002: the proxy listener's limits (RUSTA_CLIENT_*_TIMEOUT, RUSTA_MAX_CONNECTIONS_PER_CLIENT) must be
    usable."""
    try:
        ListenerLimits.from_settings(settings)
    except ValueError as exc:
        return [checks.Error(f"The proxy listener's limits (RUSTA_CLIENT_HEADER_TIMEOUT, RUSTA_CLIENT_BODY_TIMEOUT, "
                             f"RUSTA_MAX_CONNECTIONS_PER_CLIENT, RUSTA_TRUSTED_PROXIES): {exc}",
                             hint="README.md, Hostile input, lists them.", id="rusta.E002")]
    return []
