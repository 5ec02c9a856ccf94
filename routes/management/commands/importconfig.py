"""`manage.py importconfig FILE [--replace] [--strict] [--dry-run]`: load a configuration file of the earlier
gateway, all or nothing, and print every change it made."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routes import import_export, services

SETTINGS_VERBS = (("added", "settings_added"), ("changed", "settings_changed"), ("removed", "settings_removed"))


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
        parser.add_argument("--dry-run", action="store_true",
                            help="Print what the import would change, and change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        data = read_config(options["file"])
        try:
            report = import_export.import_config(data, actor=None, source="command", replace=options["replace"],
                                            strict=options["strict"], dry_run=options["dry_run"])
        except services.ConfigError as exc:
            for path, messages in exc.errors.items():
                for message in messages:
                    self.stderr.write(f"{path or '(file)'}: {message}")
            count = sum(len(messages) for messages in exc.errors.values())
            raise CommandError(f"Nothing was imported: the file has {count} error(s).") from None
        for key in report.unknown_keys:
            self.stderr.write(self.style.WARNING(f"unknown key, not used by Rusta: {key}"))
        for line in report_lines(report):
            self.stdout.write(line)
        version = services.config_version().version
        if report.dry_run:
            self.stdout.write(self.style.SUCCESS(
                f"Dry run: nothing was changed; configuration version stays {version}."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Imported; configuration version {version}."))


def report_lines(report: import_export.ImportReport) -> list[str]:
    """The report as an operator reads it: settings blocks by name (never their values), then routes."""
    blocks = [f"{block} {verb}" for verb, attr in SETTINGS_VERBS for block in getattr(report, attr)]
    # Unchanged routes are only counted: they are most of a re-imported file, and nothing happened to them.
    routes = [_named("created", report.created), _named("updated", report.updated),
              f"{len(report.unchanged)} unchanged", _named("deleted", report.deleted)]
    return [f"settings: {', '.join(blocks) or 'unchanged'}", f"routes: {', '.join(routes)}"]


def _named(verb: str, names: list[str]) -> str:
    return f"{len(names)} {verb} ({', '.join(names)})" if names else f"0 {verb}"
