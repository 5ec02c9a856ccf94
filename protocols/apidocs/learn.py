"""Shapes learned from a process's samples, merged per (route, method, path template, status): what the worker's
flusher writes to the database every few seconds (metrics.apidocs.store), off the event loop.

An operation's record is plain JSON:
`{"samples": n, "path": {param: shape}, "query": object shape, "request": bodies, "response": bodies}` (shapes
and bodies as protocols.apidocs.shapes describes them). Query parameters are the properties of the `query`
object shape, so one seen in every sample is required. At most MAX_TEMPLATES templates per route are learned (a
path of a new template beyond that is dropped and counted), so high-cardinality paths cannot blow up memory or
storage.
"""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from protocols.apidocs import shapes
from protocols.apidocs.paths import Templater, split
from protocols.apidocs.sampler import RawSample

MAX_TEMPLATES = 200
OperationKey = tuple[str, str, str, int]  # route, method, path template, status
Operation = dict[str, Any]


def new_operation() -> Operation:
    return {"samples": 0, "path": {}, "query": None, "request": None, "response": None}


def merge_operation(a: Operation, b: Operation) -> Operation:
    """Two records of one operation merged (what a store does with a stored row and a new record)."""
    path = dict(a["path"])
    for name, shape in b["path"].items():
        path[name] = shapes.merge(path.get(name), shape)
    return {"samples": a["samples"] + b["samples"], "path": path, "query": shapes.merge(a["query"], b["query"]),
            "request": shapes.merge_body(a["request"], b["request"]),
            "response": shapes.merge_body(a["response"], b["response"])}


def _body(content_type: str, body: bytes | None, over: bool) -> dict[str, Any] | None:
    if not content_type and body is None and not over:
        return None
    record = shapes.body_shape()
    record["n"] = 1
    if content_type:
        record["content_types"][content_type] = 1
    if over:
        record["unknown"] = 1
    elif body is not None:
        try:
            record["json"] = shapes.shape_of(json.loads(body))
        except (ValueError, RecursionError):
            record["invalid"] = 1
    return record


def _query(query: bytes) -> shapes.Shape:
    """The query string as an object shape: parameter names, their values' shapes (a repeated one: an array)."""
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        values.setdefault(name, []).append(value)
    properties: dict[str, Any] = {}
    for name, texts in list(values.items())[:shapes.MAX_KEYS]:
        secret = shapes.is_secret_name(name)
        one = [shapes.scalar_shape(text, secret) for text in texts]
        if len(one) == 1:
            properties[name] = one[0]
        else:
            items = None
            for shape in one:
                items = shapes.merge(items, shape)
            properties[name] = {"n": 1, "types": {"array": {"n": 1, "items": items}}}
    return {"n": 1, "types": {"object": {"n": 1, "properties": properties, "open": len(values) > shapes.MAX_KEYS}}}


class Learner:
    """The operations learned since the last `take`, per route; the path templates it learned are kept across
    takes (protocols.apidocs.paths.Templater per route)."""

    def __init__(self, max_templates: int = MAX_TEMPLATES) -> None:
        self.max_templates = max_templates
        self.operations: dict[OperationKey, Operation] = {}
        self.templaters: dict[str, Templater] = {}
        self.templates: dict[str, set[str]] = {}
        self.dropped = 0

    def add(self, sample: RawSample) -> None:
        templater = self.templaters.get(sample.route)
        if templater is None:
            templater = self.templaters[sample.route] = Templater()
        template, values = templater.template(split(sample.path), sample.pattern)
        known = self.templates.setdefault(sample.route, set())
        if template not in known:
            if len(known) >= self.max_templates:
                self.dropped += 1
                return
            known.add(template)
        record: Operation = {
            "samples": 1,
            "path": {name: shapes.scalar_shape(value, secret=True) for name, value in values.items()},
            "query": _query(sample.query),
            "request": _body(sample.request_type, sample.request_body, sample.request_over),
            "response": _body(sample.response_type, sample.response_body, sample.response_over),
        }
        key = (sample.route, sample.method, template, sample.status)
        mine = self.operations.get(key)
        self.operations[key] = record if mine is None else merge_operation(mine, record)

    def take(self) -> dict[OperationKey, Operation]:
        taken, self.operations = self.operations, {}
        return taken

    def give_back(self, operations: dict[OperationKey, Operation]) -> None:
        """Operations a store could not write, merged back to be written with the next ones."""
        for key, operation in operations.items():
            mine = self.operations.get(key)
            self.operations[key] = operation if mine is None else merge_operation(mine, operation)
