"""The references a configuration document was applied with, remembered by path so `config dump` writes them back.

`manage.py config apply` stores, for every value it resolved from `${env:NAME}` or `${file:PATH}`, the value as the
document wrote it and the SHA-256 of what it resolved to. `config dump` then writes that text again wherever the
stored value still has that digest: a secret changed since (API, admin) has another digest, so it is `<redacted>`
again, and a path that no longer exists (a route deleted or renamed) is never written. Every other string is dumped
with `${` escaped as `$${`, so applying a dump gives it back. Rows are bookkeeping for dumps, not configuration:
they bump no version and write no audit row.

Declared here and imported by routes.models, so Django files the model under the routes app; this module imports
no other model module (routes.models imports it while it is being loaded).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models

from routes.config_changes import below, join_path


class ConfigReference(models.Model):
    """A value that the last `manage.py config apply` naming its place took from a reference: where it is in the
    document (`settings.jwt.secret`), the text as written (`${env:RUSTA_JWT_SECRET}`) and the SHA-256 of the value
    it resolved to (the stored value itself is in the configuration, so the digest tells no more than it)."""

    path = models.CharField(max_length=1024, unique=True, help_text="Where the value is in a configuration document.")
    written = models.TextField(help_text="The value as the document wrote it, references unresolved.")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the value it resolved to, hex.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return f"{self.path}: {self.written}"


def value_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def escape(text: str) -> str:
    """A stored value as a document must write it so that resolving gives it back: `${` becomes `$${`."""
    return text.replace("${", "$${")


@dataclass(frozen=True)
class Written:
    """One value of a document whose text differs from what it resolved to."""

    path: str
    written: str
    resolved: str


def written_values(data: Any, resolved: Any, path: str = "") -> Iterator[Written]:
    """Each string of `data` that a reference made, with its path (the same paths as resolution errors); a string
    only escaped (`$${`) is left out, as a dump escapes it again."""
    if isinstance(data, dict) and isinstance(resolved, dict):
        for key, item in data.items():
            yield from written_values(item, resolved.get(key), join_path(path, key))
    elif isinstance(data, list) and isinstance(resolved, list):
        for index, (item, done) in enumerate(zip(data, resolved, strict=False)):
            yield from written_values(item, done, f"{path}[{index}]")
    elif isinstance(data, str) and isinstance(resolved, str) and data not in (resolved, escape(resolved)):
        yield Written(path, data, resolved)


def remember(values: list[Written], *, managed: list[str], current: Any) -> None:
    """Store an apply's written values, run inside its transaction once the configuration is written.

    `managed`: the entries the document named (`routes.users`, `settings.jwt`); the rows under them are replaced
    by this document's, so a value now written plainly loses its reference. `current`: the configuration now, as
    an unredacted dump; a row whose path is not there, or whose value has changed since, is deleted (rows under
    entries the document did not name stay while they still hold).
    """
    leaves = _leaves(current)

    def holds(path: str, digest: str) -> bool:
        value = leaves.get(path)
        return isinstance(value, str) and value_digest(value) == digest

    stale = [row.pk for row in ConfigReference.objects.select_for_update()
             if any(below(row.path, entry) for entry in managed) or not holds(row.path, row.digest)]
    ConfigReference.objects.filter(pk__in=stale).delete()
    # A value the configuration stores in another shape than the document wrote it is not at its path: no row.
    ConfigReference.objects.bulk_create(
        [ConfigReference(path=value.path, written=value.written, digest=value_digest(value.resolved))
         for value in values if holds(value.path, value_digest(value.resolved))])


def _leaves(document: Any, path: str = "", into: dict[str, Any] | None = None) -> dict[str, Any]:
    into = {} if into is None else into
    if isinstance(document, dict):
        for key, item in document.items():
            _leaves(item, join_path(path, key), into)
    elif isinstance(document, list):
        for index, item in enumerate(document):
            _leaves(item, f"{path}[{index}]", into)
    else:
        into[path] = document
    return into


def rewrite(stored: Any, shown: Any, *, written: Callable[[str, str], str | None], path: str = "") -> Any:
    """`shown` (the dump as it would be, secrets redacted) with each string `written(path, stored value)` names
    replaced by that text, and every other string escaped; `stored` is the same dump unredacted."""
    if isinstance(stored, dict) and isinstance(shown, dict):
        return {key: rewrite(stored.get(key), item, written=written, path=join_path(path, key))
                for key, item in shown.items()}
    if isinstance(stored, list) and isinstance(shown, list) and len(stored) == len(shown):
        return [rewrite(value, item, written=written, path=f"{path}[{index}]")
                for index, (value, item) in enumerate(zip(stored, shown, strict=True))]
    if isinstance(stored, str):
        text = written(path, stored)
        if text is not None:
            return text
    return escape(shown) if isinstance(shown, str) else _escaped(shown)


def _escaped(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return escape(value) if isinstance(value, str) else value


def stored_references() -> Callable[[str, str], str | None]:
    """For `rewrite`: the remembered text at a path, if the value there still has the digest it resolved to."""
    rows = {row.path: row for row in ConfigReference.objects.all()}

    def written(path: str, value: str) -> str | None:
        row = rows.get(path)
        return row.written if row is not None and row.digest == value_digest(value) else None
    return written
