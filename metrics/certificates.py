"""The TLS certificates' expiry, read from the configuration at scrape time: a gauge on /metrics and a
recommendation when one is near.

Gateway-wide, not per worker: every worker serves the same stored certificates, so the admin listener reads them
once per scrape (one query) rather than each worker reporting them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from metrics import exposition
from routes.models import Certificate

EXPIRY_FAMILY = "rusta_certificate_expiry_timestamp_seconds"
WARN_WITHIN = timedelta(days=21)  # what a renewal needs, with time to notice a failed one


def expiries() -> list[tuple[str, datetime]]:
    """(name, the leaf's not_after) of every stored certificate, by name."""
    rows = Certificate.objects.exclude(not_after=None).order_by("name").values_list("name", "not_after")
    return [(name, not_after) for name, not_after in rows if not_after is not None]


def expiry_lines(found: list[tuple[str, datetime]]) -> str:
    """The expiry gauge family as exposition text (empty without certificates; ends with a newline)."""
    if not found:
        return ""
    lines = [f"# HELP {EXPIRY_FAMILY} When each TLS certificate's leaf expires (Unix seconds).",
             f"# TYPE {EXPIRY_FAMILY} gauge"]
    lines += [f'{EXPIRY_FAMILY}{{certificate="{exposition.escape(name)}"}} {int(not_after.timestamp())}'
              for name, not_after in found]
    return "\n".join(lines) + "\n"


def expiring(found: list[tuple[str, datetime]], now: datetime) -> list[tuple[str, datetime]]:
    """The certificates that expired or expire within WARN_WITHIN, the soonest first."""
    return sorted(((name, at) for name, at in found if at - now <= WARN_WITHIN), key=lambda item: item[1])
