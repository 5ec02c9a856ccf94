"""The consumer directory a route table carries to the data plane: live API keys and JWT subjects, in two queries."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from protocols.auth.consumers import ConsumerDirectory, ConsumerIdentity, KeyGrant
from routes.consumers.models import ApiKey, ConsumerSubject


def consumer_directory(now: datetime) -> ConsumerDirectory:
    """Every key neither revoked nor expired at `now` (with its expiry, which the data plane checks on every
    request) and every subject, each with its consumer. Disabled consumers are in it: their credentials answer
    403 consumer_disabled rather than looking unknown."""
    identities: dict[int, ConsumerIdentity] = {}

    def identity(consumer_id: int, name: str, enabled: bool) -> ConsumerIdentity:
        found = identities.get(consumer_id)
        if found is None:
            found = identities[consumer_id] = ConsumerIdentity(name, enabled)
        return found

    keys = {
        bytes.fromhex(digest): KeyGrant(identity(consumer_id, name, enabled),
                                        expires_at.timestamp() if expires_at is not None else None)
        for digest, expires_at, consumer_id, name, enabled in ApiKey.objects.filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True,
        ).values_list("digest", "expires_at", "consumer_id", "consumer__name", "consumer__enabled")
    }
    subjects = {
        subject: identity(consumer_id, name, enabled)
        for subject, consumer_id, name, enabled in ConsumerSubject.objects.values_list(
            "subject", "consumer_id", "consumer__name", "consumer__enabled")
    }
    return ConsumerDirectory(keys, subjects)
