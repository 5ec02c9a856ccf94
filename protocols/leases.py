"""Backend choice for the long-lived protocols (WebSocket tunnels, FTP sessions): their one use of protocols.balancing.

The HTTP proxy drives the balancer through its retry loop (protocols/http/forwarding.py); a WebSocket handshake
or an FTP request makes one attempt, so all it needs is "pick a backend, then say how the attempt went". Keeping
that in this one module means a change to the balancing API is adapted here, and nowhere else.
"""
from __future__ import annotations

from collections.abc import Mapping

from protocols.balancing import RouteRuntime
from protocols.table import BackendSpec


class BackendLease:
    """One attempt on one backend of a route; call `done` exactly once (later calls are ignored)."""

    __slots__ = ("backend", "_runtime", "_lease", "_open")

    def __init__(self, backend: BackendSpec, runtime: object, lease: object) -> None:
        self.backend = backend
        self._runtime = runtime
        self._lease = lease
        self._open = True

    def done(self, failed: bool | None) -> None:
        """The attempt is over: failed (counts against the backend's breaker), succeeded, or None when the
        outcome says nothing about the backend (the client left first)."""
        if not self._open:
            return
        self._open = False
        runtime = self._runtime
        runtime.release(self._lease, failed, runtime.board.clock())  # type: ignore[attr-defined]


def lease_backend(runtime: RouteRuntime, health: Mapping[int, bool], client_ip: str) -> BackendLease:
    """A backend of the route for one attempt, chosen by its balancer (`runtime`, from the route's plan) among
    the backends that the health overlay and the circuit breakers allow. Raises
    protocols.errors.NoHealthyBackend (503) when there is none."""
    lease = runtime.pick(client_ip, health)
    return BackendLease(lease[0].spec, runtime, lease)
