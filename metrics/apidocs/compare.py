"""How well one OpenAPI document (learned from traffic) covers another (a reference, like drf-spectacular's):
path recall and field-level precision, recall and F1.

- Paths are compared as templates whose parameters match by position whatever their names (`/routes/{id}/` and
  `/routes/{p2}` are one path); path recall is the share of the reference's paths the learned document has.
- A field is (path, method, location, JSON field path), location `request` or `response <status>`, over the JSON
  bodies of both documents (read-only fields left out of requests, write-only ones out of responses). Fields the
  learned document finds under an object the reference leaves free-form (a JSON field, a dict) are not counted:
  the reference says nothing about them.

Usable on any pair: `python -m metrics.apidocs.compare learned.json reference.json` prints the figures.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from metrics.apidocs.documents import body_fields, operations
from metrics.apidocs.fields import Field, under_free

FieldKey = tuple[str, str, str, str]  # path key, method, location, field path


@dataclass
class Comparison:
    reference_paths: int
    matched_paths: int
    missing_paths: list[str]
    true_positives: int
    false_positives: list[FieldKey] = field(default_factory=list)
    false_negatives: list[FieldKey] = field(default_factory=list)

    @property
    def path_recall(self) -> float:
        return self.matched_paths / self.reference_paths if self.reference_paths else 1.0

    @property
    def precision(self) -> float:
        found = self.true_positives + len(self.false_positives)
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + len(self.false_negatives)
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> str:
        return (f"path recall {self.path_recall:.3f} ({self.matched_paths}/{self.reference_paths}); fields: "
                f"precision {self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f} "
                f"({self.true_positives} found, {len(self.false_positives)} extra, "
                f"{len(self.false_negatives)} missed)")


def _fields(document: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Field]]:
    found: dict[tuple[str, str, str], dict[str, Field]] = {}
    for key, method, _, operation, _ in operations(document):
        for location, fields in body_fields(operation, document).items():
            found.setdefault((key, method, location), {}).update(fields)
        responses = operation.get("responses")
        for status in responses if isinstance(responses, dict) else ():
            # A response documented without a body schema says nothing of its body: like a free-form object.
            found.setdefault((key, method, f"response {status}"), {"": Field(free=True)})
    return found


def _counted(name: str) -> bool:
    """Whether a field path counts: the body itself and a top-level array's items are not fields."""
    return name not in ("", "[]")


def compare(learned: dict[str, Any], reference: dict[str, Any]) -> Comparison:
    """The figures of `learned` against `reference` (see the module docstring)."""
    learned_paths = {key for key, *_ in operations(learned)}
    reference_paths = {key for key, *_ in operations(reference)}
    missing = sorted(reference_paths - learned_paths)
    seen = _fields(learned)
    wanted = _fields(reference)
    true_positives = 0
    false_positives: list[FieldKey] = []
    false_negatives: list[FieldKey] = []
    for where in sorted(set(seen) | set(wanted)):
        mine, theirs = seen.get(where, {}), wanted.get(where, {})
        for name in sorted(filter(_counted, mine)):
            if name in theirs:
                true_positives += 1
            elif not under_free(name, theirs):
                false_positives.append((*where, name))
        false_negatives.extend((*where, name) for name in sorted(filter(_counted, theirs)) if name not in mine)
    return Comparison(len(reference_paths), len(reference_paths) - len(missing), missing, true_positives,
                      false_positives, false_negatives)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m metrics.apidocs.compare LEARNED.json REFERENCE.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as one, open(argv[1], encoding="utf-8") as other:
        print(compare(json.load(one), json.load(other)).summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
