"""SpendEntry: one counter's spend in one window, as exported for the database and seeded back at start."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from protocols.llm.budgets.config import MONEY, TOKENS

# How long a day-or-longer counter is kept after its window ends: an export that runs just after midnight (or
# the 1st of the month) still reads the window's final spend.
PERSISTED_GRACE_S = 3600
# A minute counter is kept this long after its window: a settle arriving late finds it, nothing else reads it.
SHORT_GRACE_S = 60


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """`key` (a counter key, config.py) spent `used` in the window [`start`, `end`) (epoch seconds, UTC).

    `used` is settled usage: tokens for a `tokens:*` key, micro-units of the currency for a `money:*` key.
    `held` is what open reservations hold on top of it at the moment of the export (in-flight requests); a
    snapshot stores both, and `seed` restores `used` only (a request in flight before a restart never settles).
    """

    key: str
    start: int
    end: int
    used: int
    held: int = 0

    @property
    def kind(self) -> str:
        """`tokens` or `money`."""
        return MONEY if self.meter.startswith(MONEY + ":") else TOKENS

    @property
    def meter(self) -> str:
        """The `<meter>` part of the key: `tokens:day`, `money:USD:month`."""
        return self.key.split("|", 2)[1]

    @property
    def currency(self) -> str:
        """The currency of a money counter ("" for tokens)."""
        return self.meter.split(":")[1] if self.kind == MONEY else ""

    @property
    def period(self) -> str:
        return self.meter.rsplit(":", 1)[-1]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what a Celery task stores); `SpendEntry.from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpendEntry:
        return cls(key=str(data["key"]), start=int(data["start"]), end=int(data["end"]), used=int(data["used"]),
                   held=int(data.get("held", 0)))


def grace_s(meter: str) -> int:
    """How long after its window a counter of this `<meter>` stays in the store."""
    return SHORT_GRACE_S if meter.endswith(":minute") else PERSISTED_GRACE_S
