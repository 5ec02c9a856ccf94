"""Choosing a backend for each request: strategies, per-backend state (breakers, load, latency), runtimes per table."""
from __future__ import annotations

from protocols.balancing.base import Balancer, LeastConnections, Random, RoundRobin, SmoothWeighted
from protocols.balancing.hashing import IpHash
from protocols.balancing.latency import LatencyAware
from protocols.balancing.registry import STRATEGIES, Balancing, Lease, RouteRuntime
from protocols.balancing.state import BackendBoard, BackendState

__all__ = [
    "STRATEGIES", "BackendBoard", "BackendState", "Balancer", "Balancing", "IpHash",
    "LatencyAware", "Lease", "LeastConnections", "Random", "RoundRobin", "RouteRuntime", "SmoothWeighted",
]
