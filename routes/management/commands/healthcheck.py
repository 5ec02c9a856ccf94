"""`manage.py healthcheck`: run the active health checks without Celery (once, or every second until stopped)."""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from routes.health import checks


class Command(BaseCommand):
    help = "Probe the backends whose health check is due, as the Celery beat task does, without a broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run one round and exit.")
        parser.add_argument("--tick", type=float, default=1.0,
                            help="Seconds between rounds without --once (default 1; each backend keeps its "
                                 "route's interval).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.run_once(summary=True)
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.is_set():
            self.run_once(summary=options["verbosity"] >= 2)
            stop.wait(options["tick"])

    def run_once(self, *, summary: bool) -> checks.HealthRun:
        """One round: state changes are always printed, the count of probes when asked."""
        run = checks.probe_due_backends()
        for line in checks.describe(run):
            self.stdout.write(line)
        if summary:
            self.stdout.write(f"probed {len(run.outcomes)} backend(s), {len(run.changes)} state change(s)")
        return run
