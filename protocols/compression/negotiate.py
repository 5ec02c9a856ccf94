"""Accept-Encoding negotiation (RFC 9110 12.5.3): q-values, `*`, `identity`, and q=0 as a refusal."""
from __future__ import annotations

_ALIASES = {"x-gzip": "gzip"}


def parse_accept_encoding(value: bytes) -> dict[str, float]:
    """`gzip;q=0.8, br, *;q=0` -> {"gzip": 0.8, "br": 1.0, "*": 0.0}. Entries with an unreadable q are dropped."""
    weights: dict[str, float] = {}
    for item in value.decode("latin-1").split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, number = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(number.strip())
                except ValueError:
                    weight = -1.0
        if not 0.0 <= weight <= 1.0:
            continue
        coding = _ALIASES.get(coding, coding)
        weights[coding] = max(weight, weights.get(coding, -1.0))
    return weights


def choose(accept_encoding: bytes | None, offered: tuple[str, ...]) -> str | None:
    """The coding to use from `offered` (the server's order breaks ties), or None for identity.

    No Accept-Encoding field means identity: RFC 9110 allows any coding then, but clients that can decode
    always send the field, and old ones that send nothing may not decode.
    """
    if not accept_encoding:
        return None
    weights = parse_accept_encoding(accept_encoding)
    star = weights.get("*")
    best: str | None = None
    best_weight = 0.0
    for coding in offered:
        weight = weights.get(coding, star if star is not None else 0.0)
        if weight > best_weight:
            best, best_weight = coding, weight
    return best
