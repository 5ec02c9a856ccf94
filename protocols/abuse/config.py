"""AbusePolicy: a route's `abuse` block compiled once. A block that cannot be compiled raises BlockError at the key
it names."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.block_errors import Issues, compiled, join, opened

SHADOW, ENFORCE = "shadow", "enforce"
LOWER, BLOCK = "lower", "block"
# The abuse signatures the detection task knows, and "anomaly" for a client the models flag without one.
SIGNATURES = ("burst", "credential_stuffing", "enumeration", "scraping", "token_sharing", "anomaly")
KEYS: dict[str, Any] = {
    "enabled": True,
    "mode": SHADOW,
    "action": BLOCK,
    "factor": 0.25,
    "duration_s": 600,
    "threshold": 6.0,
    "signatures": list(SIGNATURES),
    "personalized_limits": False,
    "personalized_headroom": 3.0,
}


@dataclass(frozen=True, slots=True)
class AbusePolicy:
    """What a route does about abusive clients: see the README's *Adaptive limits* for each key."""

    mode: str = SHADOW
    action: str = BLOCK
    factor: float = 0.25
    duration_s: float = 600.0
    threshold: float = 6.0
    signatures: frozenset[str] = frozenset(SIGNATURES)
    personalized_limits: bool = False
    personalized_headroom: float = 3.0

    @property
    def enforcing(self) -> bool:
        return self.mode == ENFORCE

    @classmethod
    def from_config(cls, value: Any) -> AbusePolicy | None:
        """The policy of a block; None when the block is null or `enabled` is false (nothing counted)."""
        return compiled(compile_policy, value)

def _number(value: Any, path: str, low: float, high: float, issues: Issues) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        issues.add(path, f"Must be a number from {low:g} to {high:g}.")
        return None
    return float(value)


def _choice(value: Any, path: str, choices: tuple[str, ...], issues: Issues) -> str | None:
    if value not in choices:
        issues.add(path, f"Must be one of {', '.join(repr(c) for c in choices)}.")
        return None
    return str(value)


def compile_policy(value: Any, issues: Issues) -> AbusePolicy | None:
    """The policy of a block with every problem reported to `issues`; None when disabled or unusable."""
    enabled = opened(value, issues, "abuse", KEYS, '{"mode": "shadow"}')
    if not isinstance(value, dict):
        return None
    mode = _choice(value.get("mode", SHADOW), "mode", (SHADOW, ENFORCE), issues)
    action = _choice(value.get("action", BLOCK), "action", (LOWER, BLOCK), issues)
    factor = _number(value.get("factor", KEYS["factor"]), "factor", 0.01, 0.99, issues)
    duration = _number(value.get("duration_s", KEYS["duration_s"]), "duration_s", 10, 86400, issues)
    threshold = _number(value.get("threshold", KEYS["threshold"]), "threshold", 1, 1000, issues)
    headroom = _number(value.get("personalized_headroom", KEYS["personalized_headroom"]), "personalized_headroom",
                       1, 100, issues)
    personalized = value.get("personalized_limits", False)
    if not isinstance(personalized, bool):
        issues.add("personalized_limits", "Must be true or false.")
    signatures = value.get("signatures", KEYS["signatures"])
    if not isinstance(signatures, list) or not signatures:
        issues.add("signatures", f"Must be a non-empty list of {', '.join(SIGNATURES)}.")
        signatures = []
    for index, name in enumerate(signatures):
        if name not in SIGNATURES:
            issues.add(join("signatures", index), f"Unknown signature; known: {', '.join(SIGNATURES)}.")
    if issues or not enabled:
        return None
    assert mode and action and factor and duration and threshold and headroom
    return AbusePolicy(mode=mode, action=action, factor=factor, duration_s=duration, threshold=threshold,
                       signatures=frozenset(signatures), personalized_limits=personalized,
                       personalized_headroom=headroom)
