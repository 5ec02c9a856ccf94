"""Wrong JSON types in a route document, named as such: `"methods": "GET"` is a string, not a missing method list.

The types are read from the API's own serializers (RouterSerializer, BackendSerializer), so they are declared once.
routes.validation still decides what is valid; this layer only replaces, at and below a path whose value has the
wrong type, the messages validation gave for it (which assume the right type, like "The path is required.").
Null is never a type error here: what a null means (a default, or a missing field) is validation's to say.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from rest_framework import serializers

from routes.api.serializers import BackendSerializer, RouterSerializer
from routes.services import ConfigError
from routes.validation import Errors

T = TypeVar("T")
# Keys of the legacy single-backend form; validation reports them at the backend they become.
LEGACY_KEYS = {"host": "backends[0].host", "port": "backends[0].port"}


def json_type(value: Any) -> str:
    """What a JSON value is, in the words of a message: "a string", "a list", "true or false"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


@cache
def _fields(serializer: type[serializers.Serializer]) -> dict[str, serializers.Field]:
    return dict(serializer().fields)


def _accepts(field: serializers.Field, value: Any) -> bool:
    if isinstance(field, serializers.BooleanField):
        return isinstance(value, bool)
    if isinstance(field, (serializers.IntegerField, serializers.FloatField)):
        # A fraction sent for a whole number is a number: validation's range message says what is wrong.
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(field, (serializers.CharField, serializers.ChoiceField)):
        return isinstance(value, str)
    if isinstance(field, (serializers.ListField, serializers.ListSerializer)):
        return isinstance(value, list)
    if isinstance(field, (serializers.Serializer, serializers.DictField)):
        return isinstance(value, dict)
    return True  # JSONField: any value


def _wanted(field: serializers.Field) -> str:
    if isinstance(field, serializers.BooleanField):
        return "true or false"
    if isinstance(field, serializers.IntegerField):
        return "a whole number"
    if isinstance(field, serializers.FloatField):
        return "a number"
    if isinstance(field, serializers.ListSerializer):
        return "a list of objects"
    if isinstance(field, serializers.ListField) and isinstance(field.child, serializers.ChoiceField):
        return f'a list like ["{next(iter(field.child.choices))}"]'
    if isinstance(field, serializers.ListField):
        return "a list"
    if isinstance(field, (serializers.Serializer, serializers.DictField)):
        return "an object"
    return "a string"


def _check(fields: dict[str, serializers.Field], data: dict[str, Any], prefix: str, errors: Errors,
           rename: dict[str, str] | None = None) -> None:
    for key, value in data.items():
        field = fields.get(key)
        if field is None or field.read_only or value is None or _accepts(field, value):
            continue
        path = (rename or {}).get(key, key)
        errors[f"{prefix}{path}"] = [f"Must be {_wanted(field)}, not {json_type(value)}."]


def route_type_errors(data: Any, prefix: str = "") -> Errors:
    """Paths (after `prefix`, like "routers[2].") of the keys of one route document that have the wrong type."""
    errors: Errors = {}
    if not isinstance(data, dict):
        return errors  # the service layer says what a route document must be
    legacy = "backends" not in data and "host" in data
    # `host` and `port` are read only in the legacy form, where validation reports them at the backend they make.
    sent = {key: value for key, value in data.items() if legacy or key not in LEGACY_KEYS}
    _check(_fields(RouterSerializer), sent, prefix, errors, LEGACY_KEYS)
    backends = data.get("backends")
    for index, backend in enumerate(backends if isinstance(backends, list) else []):
        where = f"{prefix}backends[{index}]"
        if isinstance(backend, dict):
            _check(_fields(BackendSerializer), backend, f"{where}.", errors)
        elif backend is not None:
            errors[where] = [f"Must be an object with host and port, not {json_type(backend)}."]
    return errors


def config_type_errors(data: Any) -> Errors:
    """Wrong types in the routers of a configuration file, by path (`routers[2].methods`)."""
    routers = data.get("routers") if isinstance(data, dict) else None
    errors: Errors = {}
    for index, router in enumerate(routers if isinstance(routers, list) else []):
        errors.update(route_type_errors(router, f"routers[{index}]."))
    return errors


def _below(path: str, wrong: str) -> bool:
    return path == wrong or path.startswith((f"{wrong}.", f"{wrong}["))


def refuse_wrong_types(check: Callable[[], T], wrong: Errors) -> T:
    """Runs `check` (a service call that validates); wrong types replace what it said at and below their paths.

    `check` must raise ConfigError for any document with a wrong type; if it does not, the wrong types still
    refuse the document, so run it inside the transaction of any write it makes.
    """
    try:
        result = check()
    except ConfigError as exc:
        kept = {path: messages for path, messages in exc.errors.items()
                if not any(_below(path, bad) for bad in wrong)}
        raise ConfigError({**wrong, **kept}) from exc
    if wrong:
        raise ConfigError(wrong)
    return result
