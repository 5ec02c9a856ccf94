"""`manage.py runproxy`: serve the proxy and admin listeners with N worker processes."""
from __future__ import annotations

import logging
import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import DatabaseError

from rusta.env import envint
from rusta.server import ListenError, ServerOptions, Supervisor

log = logging.getLogger("rusta.server")


class Command(BaseCommand):
    help = ("Run the gateway: the proxy listener, the admin listener (admin, /api/, /metrics), their workers and, "
            "on the embedded broker, a Celery worker with beat for the background work.")
    requires_system_checks = []  # checks run below, once, with a clear message

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address of both listeners (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=envint("RUSTA_PORT", 8000), help="Proxy port (8000).")
        parser.add_argument("--admin-host", default=None, help="Address of the admin listener (default: --host).")
        parser.add_argument("--admin-port", type=int, default=envint("RUSTA_ADMIN_PORT", 8001),
                            help="Admin/API/metrics port (8001).")
        parser.add_argument("--workers", type=int, default=envint("RUSTA_WORKERS", 1),
                            help="Worker processes sharing both ports (default 1, or RUSTA_WORKERS).")
        parser.add_argument("--grace", type=float, default=settings.RUSTA_SHUTDOWN_GRACE,
                            help="Seconds SIGTERM waits for requests in flight (default 20).")
        parser.add_argument("--dns-port", type=int,
                            default=envint("RUSTA_DNS_PORT", 0) if os.environ.get("RUSTA_DNS_PORT") else None,
                            help="Also serve the DNS forwarder on this UDP and TCP port (0 picks a free one; "
                                 "default off, or RUSTA_DNS_PORT). DNS over HTTPS (/dns-query) is on the proxy port "
                                 "whenever dns routes exist.")
        parser.add_argument("--tls-port", type=int,
                            default=envint("RUSTA_TLS_PORT", 0) if os.environ.get("RUSTA_TLS_PORT") else None,
                            help="Also serve the proxy over TLS on this port, with the certificates of the route "
                                 "table picked by SNI (0 picks a free one; default off, or RUSTA_TLS_PORT).")
        parser.add_argument("--tls-host", default=None, help="Address of the TLS listener (default: --host).")
        background = parser.add_mutually_exclusive_group()
        background.add_argument(
            "--no-background", dest="background", action="store_false", default=None,
            help="Do not start the Celery worker with beat (health checks) that runproxy starts by default on "
                 "the embedded broker (no REDIS_URL).")
        background.add_argument(
            "--with-background", dest="background", action="store_true",
            help="Start a Celery worker with beat even though a broker is configured (REDIS_URL), where the "
                 "operator normally runs `celery worker` and `celery beat` separately.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1.")
        for name in ("port", "admin_port", "dns_port", "tls_port"):
            if options[name] is not None and not 0 <= options[name] <= 65535:
                raise CommandError(f"--{name.replace('_', '-')} must be a port number (0 to 65535).")
        self.check(display_num_errors=False)
        self._refuse_unmigrated_database()
        server_options = ServerOptions(
            host=options["host"],
            port=options["port"],
            admin_host=options["admin_host"] or options["host"],
            admin_port=options["admin_port"],
            workers=options["workers"],
            grace=options["grace"],
            reload_interval=settings.RUSTA_RELOAD_INTERVAL,
            background=settings.RUSTA_EMBEDDED_BROKER if options["background"] is None else options["background"],
            background_log_level=settings.RUSTA_BACKGROUND_LOG_LEVEL,
            dns_port=options["dns_port"],
            tls_host=options["tls_host"] or options["host"],
            tls_port=options["tls_port"],
        )
        try:
            code = Supervisor(server_options).run()
        except ListenError as exc:
            raise CommandError(str(exc)) from None  # names the listener, its host and port, and why
        except OSError as exc:
            raise CommandError(f"cannot start: {exc}") from None
        if code:
            raise CommandError("the gateway stopped because its workers kept failing")

    def _refuse_unmigrated_database(self) -> None:
        """Start anyway when the database is down (/ready says so), but not on a schema that is behind."""
        try:
            executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            log.warning("configuration database unavailable at start (%s); serving once it answers", exc)
            return
        finally:
            connections.close_all()
        if pending:
            raise CommandError(
                f"the database has {len(pending)} unapplied migration(s): run 'python manage.py migrate' first."
            )
