"""Money as integer micro-units (1 USD = 1_000_000), and the prices that turn a request's tokens into its cost.

Amounts written in a block (25.0, 0.15) are read through their decimal text, never through float arithmetic, so
`0.1 + 0.2` style drift cannot enter: a price or an amount with more than 6 decimals is refused. A request's
cost is computed in integers from the prices per million tokens and rounded up to the next micro-unit once per
request (not per token type): a priced request never costs 0, and sums of costs are exact integer sums.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from protocols.block_errors import BlockError, Issues, join

MICROS = 1_000_000
# Large enough for any budget, small enough that every sum stays exact in Redis's Lua (doubles: 2**53).
MAX_MICROS = 10**15
PRICE_KEYS = ("input", "output", "cached_input")


def to_micros(value: Any, path: str, *, allow_zero: bool = True) -> int:
    """A JSON number (25, 25.0, "25.50" is refused: numbers only) as an integer count of micro-units."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BlockError.at(path, "Must be a number.")
    try:
        exact = Decimal(str(value)) * MICROS  # str(0.1) is "0.1": the text the block held, not the binary float
    except InvalidOperation as exc:
        raise BlockError.at(path, "Must be a finite number.") from exc
    if not exact.is_finite():
        raise BlockError.at(path, "Must be a finite number.")
    if exact != exact.to_integral_value():
        raise BlockError.at(path, "At most 6 decimals (micro-units).")
    micros = int(exact)
    if micros < 0 or (micros == 0 and not allow_zero) or micros > MAX_MICROS:
        low = "0" if allow_zero else "more than 0"
        raise BlockError.at(path, f"Must be from {low} to {MAX_MICROS // MICROS}.")
    return micros


def format_micros(micros: int) -> str:
    """12_345_678 -> "12.345678"; for messages and exports that a person reads."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS)
    return f"{sign}{whole}.{fraction:06d}".rstrip("0").rstrip(".") if fraction else f"{sign}{whole}"


@dataclass(frozen=True, slots=True)
class Prices:
    """Micro-units per million tokens: prompt tokens (`input`), answer tokens (`output`) and prompt tokens the
    provider served from its cache (`cached_input`, which defaults to `input`)."""

    input: int = 0
    output: int = 0
    cached_input: int = 0

    @classmethod
    def from_config(cls, block: Any, path: str = "price_per_million") -> Prices:
        """Compile `{"input": 2.5, "output": 10.0, "cached_input": 1.25}` (currency units per million tokens)."""
        if not isinstance(block, dict):
            raise BlockError.at(path, 'Must be an object like {"input": 2.5, "output": 10.0}.')
        issues = Issues()
        for key in sorted(set(block) - set(PRICE_KEYS)):
            issues.add(join(path, key), f"Unknown key; known: {', '.join(PRICE_KEYS)}.")
        prices: dict[str, int] = {}
        for key in PRICE_KEYS:
            if key in block:
                try:
                    prices[key] = to_micros(block[key], join(path, key))
                except BlockError as exc:
                    for where, messages in exc.errors.items():
                        for message in messages:
                            issues.add(where, message)
        issues.raise_if_any()
        return cls(prices.get("input", 0), prices.get("output", 0),
                   prices.get("cached_input", prices.get("input", 0)))

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> int:
        """The cost in micro-units of one request's usage, rounded up once.

        `input_tokens` are the prompt tokens not served from the provider's cache (callers whose provider reports
        a total including cached tokens subtract them first).
        """
        numerator = (input_tokens * self.input + output_tokens * self.output
                     + cached_input_tokens * self.cached_input)
        return -(-numerator // MICROS)  # ceiling division, in integers

    def max_cost(self, prompt_tokens: int, max_tokens: int) -> int:
        """What a request can cost at most: its whole prompt at the uncached price and `max_tokens` of answer;
        the amount to reserve against money budgets."""
        return self.cost(prompt_tokens, max_tokens)
