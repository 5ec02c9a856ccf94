"""gRPC routes: calls proxied to HTTP/2 backends with their trailers, the gateway's errors as gRPC statuses."""
from __future__ import annotations

from protocols.grpc.call import answer_error, check_call, forward_call, is_grpc_request, is_grpc_type

__all__ = ["answer_error", "check_call", "forward_call", "is_grpc_request", "is_grpc_type"]
