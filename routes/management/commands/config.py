"""`manage.py config dump|validate|diff|apply`: the configuration as a YAML or JSON file, kept in version control."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from routes import config_files, services
from routes.certificates.config_section import certificate_path
from routes.consumers.config_section import consumer_path

YAML_SUFFIXES = (".yaml", ".yml")
STDIO = "-"
EXIT_CHANGES = 2  # diff found something to change, as diff(1) and decK answer


class FileFormatError(Exception):
    """A file that is not a configuration document at all (not YAML or JSON, a key twice, a date)."""


def _is_yaml(name: str) -> bool:
    if name == STDIO or name.lower().endswith(".json"):
        return False
    if name.lower().endswith(YAML_SUFFIXES):
        return True
    raise CommandError(f"{name}: name a .yaml, .yml or .json file (or - for JSON on standard input or output).")


class _Loader(yaml.SafeLoader):
    """YAML as JSON's data model: a key twice is an error, not the last one winning, and dates stay text."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise FileFormatError(f"line {key_node.start_mark.line + 1}: the key {key!r} must be text; quote it.")
        if key in out:
            raise FileFormatError(f"line {key_node.start_mark.line + 1}: the key '{key}' appears twice.")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FileFormatError(f"the key '{key}' appears twice in one object.")
        out[key] = value
    return out


def _refuse_constant(word: str) -> Any:
    raise FileFormatError(f"{word} is not a JSON number.")


def _only_json(value: Any, path: str = "") -> None:
    """Refuse what YAML can say and a configuration cannot hold (binary, sets, infinities), by path."""
    if isinstance(value, dict):
        for key, item in value.items():
            _only_json(item, config_files.join_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _only_json(item, f"{path}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise FileFormatError(f"{path or 'the document'}: {value} is not a JSON number.")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise FileFormatError(f"{path or 'the document'}: a {type(value).__name__} is no JSON value.")


def read_document(source: str) -> tuple[Any, Path]:
    """The parsed document of a YAML or JSON file (or JSON on standard input), and the directory its relative
    `${file:...}` references are read from."""
    name = "standard input" if source == STDIO else source
    is_yaml = _is_yaml(source)
    try:
        text = sys.stdin.read() if source == STDIO else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError:
        raise CommandError(f"{name} is not UTF-8 text.") from None
    try:
        if is_yaml:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506  # a SafeLoader
        else:
            data = json.loads(text, object_pairs_hook=_json_object, parse_constant=_refuse_constant)
        _only_json(data)
    except yaml.YAMLError as exc:
        raise CommandError(f"{name} is not valid YAML: {exc}".rstrip(".") + ".") from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except FileFormatError as exc:
        raise CommandError(f"{name}: {exc}") from None
    return data, Path.cwd() if source == STDIO else Path(source).resolve().parent


def render_document(data: dict[str, Any], target: str) -> str:
    if _is_yaml(target):
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def diff_lines(diff: config_files.ConfigDiff) -> list[str]:
    """The diff as an operator reads it: one line per value, `+` added, `-` removed, `~` changed; then counts."""
    lines = []
    for change in diff.changes:
        if change.secret:
            lines.append(f"~ {change.path}: secret changed")
        elif change.op == "add" and isinstance(change.new, dict):
            # A new route or settings block: a line per field, as it would be stored.
            lines.append(f"+ {change.path}")
            lines += [f"    {key}: {_value(value)}" for key, value in change.new.items()]
        elif change.op == "add":
            lines.append(f"+ {change.path}: {_value(change.new)}")
        elif change.op == "remove":
            # A deleted route or consumer is named, not printed whole: it is in the audit trail.
            removed = "" if change.path in _deleted_paths(diff) else f": {_value(change.old)}"
            lines.append(f"- {change.path}{removed}")
        else:
            lines.append(f"~ {change.path}: {_value(change.old)} -> {_value(change.new)}")
    if diff.changed:
        blocks = [f"{len(diff.settings_added)} added", f"{len(diff.settings_changed)} changed",
                  f"{len(diff.settings_removed)} removed"]
        routes = [f"{len(diff.created)} created", f"{len(diff.updated)} updated", f"{len(diff.deleted)} deleted",
                  f"{len(diff.unchanged)} unchanged"]
        counts = f"routes: {', '.join(routes)}; settings blocks: {', '.join(blocks)}"
        for section, names_of in (("consumers", (diff.consumers_created, diff.consumers_updated,
                                                 diff.consumers_deleted, diff.consumers_unchanged)),
                                  ("certificates", (diff.certificates_created, diff.certificates_updated,
                                                    diff.certificates_deleted, diff.certificates_unchanged))):
            if any(names_of):
                counts += f"; {section}: " + ", ".join(
                    f"{len(names)} {word}" for names, word in zip(names_of, ("created", "updated", "deleted",
                                                                             "unchanged"), strict=True))
        lines.append(counts)
    return lines


def _deleted_paths(diff: config_files.ConfigDiff) -> set[str]:
    return ({config_files.route_path(name) for name in diff.deleted}
            | {consumer_path(name) for name in diff.consumers_deleted}
            | {certificate_path(name) for name in diff.certificates_deleted})


class Command(BaseCommand):
    help = ("Configuration as code: dump the whole configuration to a YAML or JSON file, validate such a file, "
            "show what applying it would change, and apply it in one audited change.")

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True, metavar="{dump,validate,diff,apply}")
        dump = commands.add_parser("dump", help="Write the configuration to FILE or stdout: values applied from "
                                                "${env:...} or ${file:...} as those references while unchanged, "
                                                "other secrets <redacted>.")
        dump.add_argument("file", nargs="?", default=STDIO, help="A .yaml, .yml or .json file; - (default): JSON "
                                                                 "on standard output.")
        dump.add_argument("--include-secrets", action="store_true",
                          help="Write secrets instead of <redacted> (the file is made readable by you only).")
        for verb, about in (("validate", "Check FILE and print every error by path; changes nothing."),
                            ("diff", "Print what `apply` of FILE would change; exit 0 if nothing, 2 if something."),
                            ("apply", "Make the configuration what FILE says, in one audited change.")):
            sub = commands.add_parser(verb, help=about)
            sub.add_argument("file", help="A .yaml, .yml or .json file, or - for JSON on standard input.")
            sub.add_argument("--prune", action="store_true",
                             help="Also delete the routes, settings blocks, consumers and certificates FILE lacks "
                                  "(and empty the routes or settings section it leaves out), so the configuration "
                                  "equals FILE.")
            if verb == "apply":
                sub.add_argument("--dry-run", action="store_true", help="Print the diff and change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "dump":
            self.dump(options["file"], include_secrets=options["include_secrets"])
            return
        data, base_dir = read_document(options["file"])
        refs = config_files.References(env=os.environ, base_dir=base_dir)
        try:
            if options["subcommand"] == "validate":
                config_files.validate_config(data, refs=refs, prune=options["prune"])
                self.stdout.write(self.style.SUCCESS(f"{options['file']} is valid."))
            elif options["subcommand"] == "diff":
                self.diff(config_files.diff_config(data, refs=refs, prune=options["prune"]))
            else:
                self.apply(config_files.apply_config(data, actor=None, source="command", refs=refs,
                                                     prune=options["prune"], dry_run=options["dry_run"],
                                                     remember_references=True))
        except services.ConfigError as exc:
            for path, messages in exc.errors.items():
                for message in messages:
                    self.stderr.write(f"{path or '(file)'}: {message}")
            count = sum(len(messages) for messages in exc.errors.values())
            raise CommandError(f"{options['file']} has {count} error(s); nothing was changed.") from None

    def dump(self, target: str, *, include_secrets: bool) -> None:
        data = config_files.dump_config(include_secrets=include_secrets, references=True)
        text = render_document(data, target)
        if target == STDIO:
            self.stdout.write(text, ending="")
            return
        path = Path(target)
        try:
            path.write_text(text, encoding="utf-8")
            if include_secrets:
                path.chmod(0o600)  # the file now holds secrets
        except OSError as exc:
            raise CommandError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        self.stderr.write(f"Wrote {len(data['routes'])} route(s), {len(data['settings'])} settings block(s), "
                          f"{len(data['consumers'])} consumer(s) and {len(data['certificates'])} certificate(s) to "
                          f"{target}.")

    def diff(self, diff: config_files.ConfigDiff) -> None:
        for line in diff_lines(diff):
            self.stdout.write(line)
        if diff.changed:
            self.stdout.flush()
            raise SystemExit(EXIT_CHANGES)

    def apply(self, diff: config_files.ConfigDiff) -> None:
        for line in diff_lines(diff):
            self.stdout.write(line)
        version = services.config_version().version
        if not diff.changed:
            self.stdout.write(self.style.SUCCESS(f"Nothing to change; configuration version stays {version}."))
        elif diff.applied:
            self.stdout.write(self.style.SUCCESS(f"Applied; configuration version {version}."))
        else:
            self.stdout.write(self.style.SUCCESS(f"Dry run: nothing was changed; configuration version stays "
                                                 f"{version}."))
