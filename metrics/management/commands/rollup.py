"""`manage.py rollup`: ingest the Redis buckets (when configured) and fill every rollup, without a broker."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.dateparse import parse_datetime

from metrics import timeseries


class Command(BaseCommand):
    help = "Roll the raw 10-second traffic points up into the 1 min, 5 min, 1 h and 1 d series, as Celery does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="An ISO datetime to run as of (a replay); default: now.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = parse_datetime(options["now"]) if options["now"] else None
        for run in timeseries.ingest_and_rollup(now=now):
            until = run.filled_until.isoformat() if run.filled_until else "unchanged"
            self.stdout.write(f"{run.resolution}: {run.buckets} bucket(s), {run.rows} row(s), filled until {until}")
