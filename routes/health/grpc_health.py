"""gRPC's standard health check (grpc.health.v1.Health/Check) as bytes: the request a probe sends and its verdict.

The two messages are tiny enough to encode by hand (no protobuf dependency): HealthCheckRequest is
`string service = 1`, HealthCheckResponse is `ServingStatus status = 1` (UNKNOWN 0, SERVING 1, NOT_SERVING 2,
SERVICE_UNKNOWN 3). A backend's `health_check_path` names the service: `/` asks about the whole server (service
""), `/my.pkg.Service` about that service.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

CHECK_PATH = "/grpc.health.v1.Health/Check"
HEADERS = {"content-type": "application/grpc", "te": "trailers"}
SERVING = 1
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
MAX_ANSWER = 64 * 1024  # a HealthCheckResponse is a few bytes; more is not a health answer


@dataclass(frozen=True)
class Verdict:
    """A judged answer: `reason` is a routes.health.models.ProbeReason; `code` the HTTP status for `status`, the
    gRPC status for `grpc_status`, the serving status for `grpc_not_serving`."""

    ok: bool
    reason: str
    code: int | None = None
    detail: str = ""


def service_name(health_check_path: str) -> str:
    """The service a gRPC backend's health_check_path names: "" for `/`."""
    return health_check_path.strip("/")


def request_body(service: str) -> bytes:
    """One uncompressed gRPC frame holding HealthCheckRequest{service}."""
    name = service.encode()
    message = b"\x0a" + _varint(len(name)) + name if name else b""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def judge(http_status: int, grpc_status: str | None, grpc_message: str, body: bytes) -> Verdict:
    """The verdict on an answer: HTTP 200 whose first message says SERVING is healthy, anything else is not.

    `grpc_status` is the header's value, if the answer was Trailers-Only (the status in the headers, as a backend
    without the health service answers UNIMPLEMENTED); a status in real trailers comes after the message.
    """
    if http_status != 200:
        return Verdict(False, "status", http_status)
    if grpc_status is not None and grpc_status.strip() != "0":
        try:
            code = int(grpc_status)
        except ValueError:
            return Verdict(False, "invalid", detail=f"grpc-status {grpc_status[:40]!r}")
        return Verdict(False, "grpc_status", code, unquote(grpc_message)[:200])
    message = _first_message(body)
    if message is None:
        return Verdict(False, "grpc_no_message", detail=f"{len(body)} bytes, no complete message")
    status = _field_1_varint(message)
    if status is None:
        return Verdict(False, "invalid", detail="not a HealthCheckResponse")
    if status != SERVING:
        return Verdict(False, "grpc_not_serving", status, STATUS_NAMES.get(status, str(status)))
    return Verdict(True, "grpc_serving", status)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int] | None:
    """(value, next offset), or None when the data ends inside it."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def _first_message(body: bytes) -> bytes | None:
    """The first complete, uncompressed message of a gRPC body (the probe never asks for compression)."""
    if len(body) < 5 or body[0] != 0:
        return None
    size = int.from_bytes(body[1:5], "big")
    return body[5:5 + size] if len(body) >= 5 + size else None


def _field_1_varint(message: bytes) -> int | None:
    """Field 1 of a protobuf message as a varint (0 when absent, proto3's default); None when malformed."""
    found, at = 0, 0
    while at < len(message):
        key = _read_varint(message, at)
        if key is None:
            return None
        tag, at = key
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value = _read_varint(message, at)
            if value is None:
                return None
            if field == 1:
                found = value[0]
            at = value[1]
        elif wire == 2:
            length = _read_varint(message, at)
            if length is None:
                return None
            at = length[1] + length[0]
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            return None
    return found if at == len(message) else None
