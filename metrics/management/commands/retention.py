"""`manage.py retention`: delete traffic points older than their resolution's retention, without a broker."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.dateparse import parse_datetime

from metrics import timeseries


class Command(BaseCommand):
    help = "Apply the retention policy (edited in the admin) to the stored traffic series, as Celery does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="An ISO datetime to run as of (a replay); default: now.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = parse_datetime(options["now"]) if options["now"] else None
        deleted = timeseries.apply_retention(now=now)
        for resolution, count in deleted.items():
            self.stdout.write(f"{resolution}: {count} point(s) deleted")
