"""metrics.services.set_retention: how long the traffic history is kept, changed by an operator and audited."""
from __future__ import annotations

import pytest

from metrics.models import RetentionPolicy
from metrics.services import set_retention
from routes.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_changing_how_long_history_is_kept_is_audited(staff_user):
    policy = RetentionPolicy.objects.first()
    before = policy.keep_days
    set_retention(policy, 400, actor=staff_user, source="admin")
    entry = AuditEntry.objects.get(object_type="retention")
    assert (entry.actor_name, entry.changes) == (staff_user.username, {"keep_days": [before, 400]})
    set_retention(policy, 400, actor=staff_user, source="admin")
    assert AuditEntry.objects.filter(object_type="retention").count() == 1
