"""`manage.py importconfig FILE [--replace] [--strict]`: load a configuration file of the earlier gateway, all or
nothing."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routes import services


def read_config(source: str) -> Any:
    """The parsed JSON of a file, or of standard input for `-`; CommandError with a readable reason otherwise."""
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{name} is not a JSON file (it is not UTF-8 text).") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except ValueError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc}.") from None


def _refuse_constant(word: str) -> Any:
    # Python reads NaN and Infinity, JSON (and PostgreSQL's jsonb) does not.
    raise ValueError(f"{word} is not a JSON number")


class Command(BaseCommand):
    help = ("Import a configuration file in the earlier gateway's format (or Rusta's export). Routes are matched "
            "by name; an invalid file changes nothing.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The JSON file, or - for standard input.")
        parser.add_argument("--replace", action="store_true",
                            help="Delete routes that are not in the file, so the database equals the file.")
        parser.add_argument("--strict", action="store_true",
                            help="Refuse the file, changing nothing, if it has a key Rusta does not know "
                                 "(without it such keys are printed as warnings and the rest is imported).")

    def handle(self, *args: Any, **options: Any) -> None:
        data = read_config(options["file"])
        try:
            report = services.import_config(data, actor=None, source="command", replace=options["replace"],
                                            strict=options["strict"])
        except services.ConfigError as exc:
            for path, messages in exc.errors.items():
                for message in messages:
                    self.stderr.write(f"{path or '(file)'}: {message}")
            count = sum(len(messages) for messages in exc.errors.values())
            raise CommandError(f"Nothing was imported: the file has {count} error(s).") from None
        for key in report.unknown_keys:
            self.stderr.write(self.style.WARNING(f"unknown key, not used by Rusta: {key}"))
        for label, names in (("created", report.created), ("updated", report.updated),
                             ("deleted", report.deleted)):
            for name in names:
                self.stdout.write(f"{label}: {name}")
        self.stdout.write(self.style.SUCCESS(
            f"Imported: {len(report.created)} created, {len(report.updated)} updated, "
            f"{len(report.deleted)} deleted; configuration version {services.config_version().version}."
        ))
