"""A compiled prompt guard and its verdict on a prompt: allowed, refused (naming the rule) or masked."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from protocols.llm.guard.detectors import DESCRIPTIONS, Found, find, mask

ROLES = ("system", "user", "assistant", "tool")
# Newer or older names of the same roles in the providers' formats.
ROLE_ALIASES = {"developer": "system", "function": "tool"}
REFUSED_STATUS = 400

Message = tuple[str, str]  # (role, text), as the translation layer hands them over


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guard decided about a prompt.

    `refused`: `rule` names what refused it (`guard.deny[2]` or a deny rule's own name, `guard.allow`,
    `guard.detect.card`, `guard.max_prompt_tokens`) and `message` is the client's explanation; neither repeats
    the text that was matched. `masked`: `texts` holds every message's text in order (the unchecked ones as they
    were) and `counts` how many of each kind were replaced.
    """

    outcome: Literal["allowed", "refused", "masked"]
    rule: str = ""
    message: str = ""
    status: int = REFUSED_STATUS
    texts: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"


ALLOWED = Verdict("allowed")


def refusal(rule: str, message: str) -> Verdict:
    return Verdict("refused", rule=rule, message=message)


@dataclass(frozen=True, slots=True)
class Guard:
    """A route's prompt guard, compiled once (protocols.llm.guard.config.compile_guard) and shared by requests.

    `deny_set` and `allow_set` are re2 sets: one linear pass over a message answers which of all their patterns
    match it, however many there are. `deny_rules[i]` is the rule named when pattern i of `deny_set` matches.
    """

    roles: frozenset[str]
    deny_set: Any = None
    deny_rules: tuple[str, ...] = ()
    allow_set: Any = None
    detect: tuple[str, ...] = ()
    action: Literal["refuse", "mask"] = "refuse"
    max_prompt_tokens: int | None = None

    def check(self, messages: Sequence[Message]) -> Verdict:
        """The verdict on a prompt. Deny patterns, then allow patterns, then detectors, on the original text of
        every message whose role is checked (all of them, not only the last: a client writes the history too)."""
        checked = [(index, role, text) for index, (role, text) in enumerate(messages)
                   if ROLE_ALIASES.get(role, role) in self.roles]
        if self.deny_set is not None:
            for _, role, text in checked:
                hits = self.deny_set.Match(text)
                if hits:
                    rule = self.deny_rules[min(hits)]
                    return refusal(rule, f"The prompt was refused by the gateway's rule {rule} (in a {role} message).")
        if self.allow_set is not None:
            texts = [(role, text) for _, role, text in checked if text]
            if not texts:
                return refusal("guard.allow", "The prompt was refused: it has no text the gateway's allowed "
                                              "patterns could match (rule guard.allow).")
            for role, text in texts:
                if not self.allow_set.Match(text):
                    return refusal("guard.allow", f"The prompt was refused: a {role} message matches none of the "
                                                  "gateway's allowed patterns (rule guard.allow).")
        if not self.detect:
            return ALLOWED
        found: dict[int, list[Found]] = {}
        for index, role, text in checked:
            items = find(self.detect, text)
            if items and self.action == "refuse":
                kind = items[0].kind
                return refusal(f"guard.detect.{kind}", f"The prompt was refused: a {role} message contains "
                                                       f"{DESCRIPTIONS[kind]} (rule guard.detect.{kind}).")
            if items:
                found[index] = items
        if not found:
            return ALLOWED
        counts: dict[str, int] = {}
        for items in found.values():
            for item in items:
                counts[item.kind] = counts.get(item.kind, 0) + 1
        texts_out = tuple(mask(text, found[index]) if index in found else text
                          for index, (_, text) in enumerate(messages))
        return Verdict("masked", texts=texts_out, counts=counts)

    def check_tokens(self, prompt_tokens: int) -> Verdict:
        """The verdict of the cap on prompt tokens, given the prompt's count (the caller counts it once, for the
        cap and the token budget alike)."""
        cap = self.max_prompt_tokens
        if cap is None or prompt_tokens <= cap:
            return ALLOWED
        return refusal("guard.max_prompt_tokens", f"The prompt has {prompt_tokens} tokens, more than the {cap} "
                                                  "this route allows (rule guard.max_prompt_tokens).")
