"""`manage.py detect_abuse`: one run of the abuse detection (verdicts, personalized limits), without a broker."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from metrics.abuse.detection import detect


class Command(BaseCommand):
    help = ("Judge the clients of the routes with an abuse block against their baselines and the abuse signatures, "
            "as the metrics.detect_abuse task does.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="An ISO datetime to run as of (a replay); default: now.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = None
        if options["now"]:
            now = parse_datetime(options["now"])
            if now is None or now.tzinfo is None:
                raise CommandError(f"--now {options['now']!r}: give an ISO datetime with its offset, like "
                                   "2026-12-07T10:00:00+00:00.")
        run = detect(now)
        for route in run.routes:
            self.stdout.write(f"{route.route}: {route.clients} client(s), {route.judged} window(s) judged, "
                              f"{route.created} verdict(s) created, {route.extended} extended, "
                              f"{route.limits} limit(s) learned ({route.model_version})")
        if run.skipped:
            self.stdout.write(f"over budget: {', '.join(run.skipped)} left for the next run")
        self.stdout.write(f"{run.deleted} old client window(s) deleted")
