"""The route page's rows editor of the transformation blocks: the textarea widget that carries it, and the form's
errors on those blocks by path, for the editor to show next to the rule each one is about.

The editor (routes/static/routes/transform_*.js) is progressive enhancement: the block's JSON textarea stays
the only thing posted, so routes.transformations' validation on save remains the single judge. Without
JavaScript the page is the plain JSON textarea.
"""
from __future__ import annotations

import re
from typing import Any

from django import forms

from protocols.transform import REQUEST_KEYS, RESPONSE_KEYS

# The form fields the editor handles, with the keys their blocks know (the first segment of an error's path).
TRANSFORMATION_FIELDS: dict[str, frozenset[str]] = {
    "request_transformation": REQUEST_KEYS,
    "response_transformation": RESPONSE_KEYS,
}
# routes.forms.BackendInlineFormSet reports `request_transformation.headers[2].pattern` on the field
# `request_transformation` as "headers[2].pattern: <message>"; a block-level message has no such prefix.
# A path has no spaces or colons (header names and JSON paths in the list form cannot hold them).
_PREFIXED = re.compile(r"^(?P<path>(?P<key>[A-Za-z_]\w*)[^\s:]*): (?P<message>.+)$", re.DOTALL)

BlockErrors = dict[str, list[str]]


class TransformationEditorWidget(forms.Textarea):
    """The block's JSON textarea, marked for the editor's script, which renders rows from it and writes them back."""

    def __init__(self, block: str, attrs: dict[str, Any] | None = None) -> None:
        base = {"rows": 6, "cols": 80, "class": "vLargeTextField", "spellcheck": "false",
                "data-transform-block": block}
        super().__init__({**base, **(attrs or {})})

    class Media:
        js = ("routes/transform_rows.js", "routes/transform_mappings.js", "routes/transform_editor.js")
        css = {"all": ("routes/transform_editor.css",)}


def split_message(message: str, known: frozenset[str]) -> tuple[str, str]:
    """("headers[2].pattern", "<message>") for a message prefixed with a path inside the block; ("", message) for
    a message about the block as a whole (or one whose text merely contains a colon)."""
    found = _PREFIXED.match(message)
    if found is None:
        return "", message
    key = found.group("key")
    if key not in known and not key.startswith("_"):
        return "", message
    return found.group("path"), found.group("message")


def transformation_errors(form: forms.BaseForm) -> dict[str, BlockErrors]:
    """The form's errors on the transformation fields, by path inside each block:
    `{"request_transformation": {"headers[2].pattern": ["..."], "": ["block-level message"]}}`.
    Only the fields that have errors are present; `{}` when there are none (or the form is unbound)."""
    found: dict[str, BlockErrors] = {}
    if not form.is_bound:
        return found
    for field, known in TRANSFORMATION_FIELDS.items():
        for message in form.errors.get(field, []):
            path, text = split_message(str(message), known)
            found.setdefault(field, {}).setdefault(path, []).append(text)
    return found
