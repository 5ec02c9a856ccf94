"""`manage.py rundns`: serve the DNS forwarder (UDP and TCP) for the resolvers of the enabled dns routes."""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.utils import DatabaseError

from protocols.dns import DnsForwarder
from protocols.table import LiveTable
from routes.live import TableWatcher
from routes.snapshot import build_table
from rusta.env import envint

log = logging.getLogger("rusta.dns")


class Command(BaseCommand):
    help = ("Run the DNS forwarder on UDP and TCP until SIGTERM: answers from its cache, else from the upstream "
            "resolvers (the backends of the enabled routes with protocol 'dns'), following configuration changes.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=envint("RUSTA_DNS_PORT", 5353),
                            help="UDP and TCP port (default 5353, or RUSTA_DNS_PORT; 0 picks a free one).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0 <= options["port"] <= 65535:
            raise CommandError("--port must be a port number (0 to 65535).")
        state = LiveTable()
        try:
            state.install(build_table())
        except DatabaseError as exc:
            log.warning("configuration database unavailable at start (%s); forwarding once it answers", exc)
        watcher = TableWatcher(state, interval=settings.RUSTA_RELOAD_INTERVAL)
        watcher.start()
        try:
            uvloop.run(self._serve(state, options["host"], options["port"]))
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}") from None
        finally:
            watcher.stop()

    async def _serve(self, state: LiveTable, host: str, port: int) -> None:
        forwarder = DnsForwarder(state)
        bound = await forwarder.start(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        resolvers = ", ".join(r.label for r in forwarder.resolvers()) or "none yet"
        self.stdout.write(f"DNS forwarder listening on {host}:{bound} (UDP and TCP); resolvers: {resolvers}")
        self.stdout.flush()
        await stop.wait()
        await forwarder.close()
        log.info("DNS forwarder stopped; cache %s", forwarder.cache.stats())
