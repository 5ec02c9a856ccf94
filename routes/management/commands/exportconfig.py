"""`manage.py exportconfig [--output FILE] [--include-secrets]`: the configuration as the earlier gateway's JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routes import import_export


class Command(BaseCommand):
    help = "Write the whole configuration as JSON that `importconfig` (and the earlier gateway) can read."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")
        parser.add_argument("--include-secrets", action="store_true",
                            help="Write secrets (JWT secret, API keys) instead of <redacted>; keep the file safe.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = import_export.export_config(include_secrets=options["include_secrets"])
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        output = options.get("output")
        if not output or output == "-":
            self.stdout.write(text, ending="")
            return
        path = Path(output)
        try:
            path.write_text(text, encoding="utf-8")
            if options["include_secrets"]:
                path.chmod(0o600)  # the file now holds secrets
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror or exc}.") from None
        self.stderr.write(f"Wrote {len(data['routers'])} route(s) to {output}.")
