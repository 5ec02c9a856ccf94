"""`manage.py llm_spend`: copy the LLM counters from Redis to the database (and raise back lost ones), no broker."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metrics import llm_spend
from protocols.llm.budgets import StoreUnavailable


class Command(BaseCommand):
    help = ("Copy the LLM token limits' and budgets' day-or-longer counters from Redis to the database, as the "
            "metrics.persist_llm_spend task does.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: on the embedded default each gateway process writes its own "
                               "counters to the database.")
        try:
            sync = llm_spend.persist_redis_spend(settings.REDIS_URL)
        except StoreUnavailable as exc:
            raise CommandError(f"Redis did not answer: {exc}") from exc
        self.stdout.write(f"{sync.read} counter(s) read from Redis, {sync.raised} row(s) raised, "
                          f"{sync.restored} counter(s) raised back in Redis")
