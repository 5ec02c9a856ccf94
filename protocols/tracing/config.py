"""The OTLP exporter's configuration, read once at start-up from OpenTelemetry's standard environment variables.

Export is off unless an endpoint is set (or `OTEL_TRACES_EXPORTER=otlp` asks for the default one). A value
Rusta cannot use raises `OtlpConfigError` naming the variable: a mistaken tracing set-up should stop the
gateway at start-up, not lose spans quietly. Where the specification itself says "warn and use the default"
(an unknown sampler), that is what happens.

Only OTLP/HTTP with JSON bodies is spoken (no protobuf, no gRPC in the stack): `http/protobuf` is answered
with one warning and JSON export anyway, since an OTLP/HTTP receiver takes both encodings on the same path;
`grpc` is answered with one warning and no export, since a gRPC port cannot take an HTTP/1.1 POST.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"  # the specification's OTLP/HTTP default
DEFAULT_SERVICE_NAME = "rusta"
DEFAULT_SAMPLER = "parentbased_always_on"
SAMPLERS = frozenset({"always_on", "always_off", "traceidratio",
                      "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"})
RATIO_SAMPLERS = frozenset({"traceidratio", "parentbased_traceidratio"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP field name (RFC 9110 5.1)


class OtlpConfigError(ValueError):
    """An OpenTelemetry environment variable holds a value Rusta cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    """Where and how spans go: the traces URL, extra request fields, limits of the batch processor, the sampler."""

    endpoint: str = DEFAULT_ENDPOINT  # the full URL spans are POSTed to (.../v1/traces)
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0  # per export request
    resource: tuple[tuple[str, str], ...] = (("service.name", DEFAULT_SERVICE_NAME),)
    max_queue_size: int = 2048
    schedule_delay_s: float = 5.0
    max_export_batch_size: int = 512
    sampler: str = DEFAULT_SAMPLER
    ratio: float = 1.0  # traceidratio samplers: the share of traces kept

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OtlpConfig | None:
        """The configuration the variables in `environ` describe, or None when export is off."""
        env = _Env(environ)
        if env.boolean("OTEL_SDK_DISABLED"):
            return None
        endpoint = _endpoint(env)
        if endpoint is None or not _json_protocol(env):
            return None
        sampler, ratio = _sampler(env)
        queue_size = env.integer("OTEL_BSP_MAX_QUEUE_SIZE", 2048, minimum=1)
        batch_size = env.integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, minimum=1)
        if batch_size > queue_size:
            raise OtlpConfigError(f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({batch_size}) must not be larger than "
                                  f"OTEL_BSP_MAX_QUEUE_SIZE ({queue_size})")
        return cls(
            endpoint=endpoint,
            headers=_headers(env),
            timeout_s=env.milliseconds("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000,
                                       positive=True),
            resource=_resource(env),
            max_queue_size=queue_size,
            schedule_delay_s=env.milliseconds("OTEL_BSP_SCHEDULE_DELAY", None, 5_000),
            max_export_batch_size=batch_size,
            sampler=sampler,
            ratio=ratio,
        )


class _Env:
    """Typed reads of the variables; an empty value counts as unset, as the specification asks."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> str:
        return self.environ.get(name, "").strip()

    def first(self, specific: str, general: str | None) -> tuple[str, str]:
        """(name, value) of the signal-specific variable when set, else of the general one."""
        value = self.get(specific)
        if value or general is None:
            return specific, value
        return general, self.get(general)

    def boolean(self, name: str) -> bool:
        value = self.get(name).lower()
        if value in ("", "false"):
            return False
        if value == "true":
            return True
        raise OtlpConfigError(f"{name} must be true or false, not {self.get(name)!r}")

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        raw = self.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise OtlpConfigError(f"{name} must be a whole number of at least {minimum}, not {raw!r}")
        return value

    def milliseconds(self, specific: str, general: str | None, default_ms: int, *, positive: bool = False) -> float:
        name, raw = self.first(specific, general)
        if not raw:
            return default_ms / 1000
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value < 0 or (positive and value == 0) or value != value or value == float("inf"):
            bound = "more than 0" if positive else "0 or more"
            raise OtlpConfigError(f"{name} must be a number of milliseconds, {bound}, not {raw!r}")
        return value / 1000


def _endpoint(env: _Env) -> str | None:
    """The traces URL, or None when no variable turns export on."""
    exporters = [item.strip().lower() for item in env.get("OTEL_TRACES_EXPORTER").split(",") if item.strip()]
    unknown = [item for item in exporters if item not in ("otlp", "none")]
    if unknown:
        raise OtlpConfigError(f"OTEL_TRACES_EXPORTER: Rusta exports spans with otlp (or none), not {unknown[0]!r}")
    if "none" in exporters:
        return None
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    general = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if specific:
        return _url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", specific)
    if general:
        return _url("OTEL_EXPORTER_OTLP_ENDPOINT", general).rstrip("/") + "/v1/traces"
    return DEFAULT_ENDPOINT if exporters else None


def _url(name: str, value: str) -> str:
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise OtlpConfigError(f"{name} must be an http:// or https:// URL with a host, not {value!r}")
    return value


def _json_protocol(env: _Env) -> bool:
    """False when the protocol asked for cannot be spoken at all (gRPC): export is then off, with a warning."""
    name, protocol = env.first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol in ("", "http/json"):
        return True
    if protocol == "http/protobuf":
        log.warning("%s=http/protobuf: Rusta exports spans as OTLP/HTTP JSON only; sending JSON to the same "
                    "endpoint (OTLP/HTTP receivers accept both)", name)
        return True
    if protocol == "grpc":
        log.warning("%s=grpc: Rusta exports spans as OTLP/HTTP JSON only, which a gRPC endpoint cannot take; "
                    "span export is OFF (set %s=http/json and an OTLP/HTTP endpoint, port 4318)", name, name)
        return False
    raise OtlpConfigError(f"{name} must be http/json (or http/protobuf, exported as JSON), not {protocol!r}")


def _pairs(name: str, raw: str) -> list[tuple[str, str]]:
    """`k=v,k2=v2` with percent-encoded values (W3C Baggage without properties); empty items are skipped."""
    pairs = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OtlpConfigError(f"{name} must be a list of key=value pairs separated by commas; "
                                  f"{item.strip()!r} is not one")
        pairs.append((unquote(key), unquote(value.strip())))
    return pairs


def _headers(env: _Env) -> tuple[tuple[str, str], ...]:
    name, raw = env.first("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    headers = _pairs(name, raw)
    for key, value in headers:
        if not _TOKEN.fullmatch(key):
            raise OtlpConfigError(f"{name}: {key!r} is not a valid HTTP header name")
        if any(ch in value for ch in "\r\n\0"):
            raise OtlpConfigError(f"{name}: the value of {key!r} contains a line break")
    return tuple(headers)


def _resource(env: _Env) -> tuple[tuple[str, str], ...]:
    """service.name first (OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES), then the other attributes."""
    attributes = dict(_pairs("OTEL_RESOURCE_ATTRIBUTES", env.get("OTEL_RESOURCE_ATTRIBUTES")))
    service = env.get("OTEL_SERVICE_NAME") or attributes.pop("service.name", "") or DEFAULT_SERVICE_NAME
    attributes.pop("service.name", None)
    return (("service.name", service), *attributes.items())


def _sampler(env: _Env) -> tuple[str, float]:
    sampler = env.get("OTEL_TRACES_SAMPLER").lower() or DEFAULT_SAMPLER
    if sampler not in SAMPLERS:
        log.warning("OTEL_TRACES_SAMPLER=%s is not supported (supported: %s); using %s", sampler,
                    ", ".join(sorted(SAMPLERS)), DEFAULT_SAMPLER)
        return DEFAULT_SAMPLER, 1.0
    raw = env.get("OTEL_TRACES_SAMPLER_ARG")
    if sampler not in RATIO_SAMPLERS or not raw:
        return sampler, 1.0
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise OtlpConfigError(f"OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1 for {sampler}, not {raw!r}")
    return sampler, ratio
